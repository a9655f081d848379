// pstrain is built and tested on Linux (glibc) only; see README.md. A build on another
// system stops here with a sentence instead of failing later inside a Glibc call.
#if !os(Linux)
  #error("pstrain builds on Linux (glibc) only; see README.md")
#endif

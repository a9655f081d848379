#ifndef PSTRAIN_ALLOCATION_COUNTER_H
#define PSTRAIN_ALLOCATION_COUNTER_H
/// Heap allocations made so far by the calling thread (malloc, calloc, realloc,
/// aligned allocations), counted by wrappers around glibc's allocator. Linked
/// into the tests only, to check that a hot path allocates nothing.
unsigned long long pstrain_thread_allocations(void);
/// Prints a backtrace of each of this thread's allocations to stderr while `on` is 1.
void pstrain_trace_allocations(int on);
#endif

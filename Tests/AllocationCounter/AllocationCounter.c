// Counts the calling thread's heap allocations by wrapping glibc's allocator.
// Test-only: the pstrain executable never links this.
#include <stddef.h>
#include <errno.h>
#include "AllocationCounter.h"
#include <execinfo.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static __thread unsigned long long allocations;
static __thread int tracing, insideTrace;

void pstrain_trace_allocations(int on) { tracing = on; }

// With tracing on, writes "allocation:" and a backtrace to stderr.
static void trace(void) {
  if (!tracing || insideTrace) return;
  insideTrace = 1;  // backtrace() may allocate itself
  void *frames[16];
  int count = backtrace(frames, 16);
  write(2, "allocation:\n", 12);
  backtrace_symbols_fd(frames, count, 2);
  insideTrace = 0;
}

void *malloc(size_t size) { allocations++; trace(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { allocations++; trace(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { allocations++; trace(); return __libc_realloc(pointer, size); }
void free(void *pointer) { __libc_free(pointer); }
void *memalign(size_t alignment, size_t size) { allocations++; trace(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { allocations++; trace(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
  allocations++;
  trace();
  void *pointer = __libc_memalign(alignment, size);
  if (pointer == NULL) return ENOMEM;
  *out = pointer;
  return 0;
}

unsigned long long pstrain_thread_allocations(void) { return allocations; }

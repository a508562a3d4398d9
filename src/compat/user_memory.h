// Copies to and from memory a Winsock caller handed us, with the answer
// Windows gives for a bad pointer (WSAEFAULT) instead of a crash: the copy
// goes through process_vm_writev/readv on our own process, which the kernel
// checks page by page, as it checks a syscall's buffer.
#pragma once

#include <cstddef>

namespace sockgate::winsock {

// False when [dst, dst+n) is not writable (or [src, src+n) readable) memory.
[[nodiscard]] bool copyToUser(void* dst, const void* src, size_t n);
[[nodiscard]] bool copyFromUser(void* dst, const void* src, size_t n);

// Whether the n bytes at p can be read / read and written, touching nothing.
[[nodiscard]] bool userReadable(const void* p, size_t n);
[[nodiscard]] bool userWritable(void* p, size_t n);

}  // namespace sockgate::winsock

#include "models/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/error.hpp"

namespace tori::models {

MappedFile::MappedFile(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw InputError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st{};
  if (fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    throw InputError("cannot stat '" + path + "': " + std::strerror(e));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) return;
  void* m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
  if (m == MAP_FAILED) {
    const int e = errno;
    ::close(fd_);
    throw Error("cannot map '" + path + "': " + std::strerror(e));
  }
  map_ = static_cast<unsigned char*>(m);
}

MappedFile::~MappedFile() {
  if (map_) munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::drop(size_t begin, size_t end) const {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t lo = begin / page * page;
  if (map_ && end > lo) madvise(map_ + lo, std::min(end, size_) - lo, MADV_DONTNEED);
}

}  // namespace tori::models

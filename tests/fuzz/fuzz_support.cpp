#include "tests/fuzz/fuzz_support.hpp"

#include <cxxabi.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <typeinfo>

namespace tori::fuzz {

void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void unexpected_exception(const std::exception* e) {
  if (!e) finding("an exception that is not a std::exception");
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(abi::__cxa_demangle(typeid(*e).name(), nullptr, nullptr, &status),
                                                   &std::free);
  finding(std::string("exception of type ") + (status == 0 ? name.get() : typeid(*e).name()) +
          " (expected tori::Error): " + e->what());
}

ScratchFile::ScratchFile(const std::string& suffix) {
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
  path_ = std::string(dir ? dir : "/tmp") + "/tori-fuzz-" + std::to_string(getpid()) + suffix;
}

ScratchFile::~ScratchFile() { unlink(path_.c_str()); }

const std::string& ScratchFile::write(const uint8_t* data, size_t size) {
  const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) finding("harness: cannot create " + path_ + ": " + std::strerror(errno));
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0) finding("harness: cannot write " + path_ + ": " + std::strerror(errno));
    done += size_t(n);
  }
  close(fd);
  return path_;
}

std::string test_data(const std::string& file) { return std::string(TORI_SOURCE_DIR) + "/tests/models/data/" + file; }

}  // namespace tori::fuzz

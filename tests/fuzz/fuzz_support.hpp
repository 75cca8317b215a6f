#pragma once
// What every libFuzzer target here shares (docs/testing.md#fuzzing):
//   - the rule of a finding: bad input must end in tori::Error (or its InputError), the one
//     exception type the project throws for it; any other exception, a failed property check, a
//     crash or a sanitizer report is a finding (printed, then abort() so libFuzzer saves the input);
//   - a scratch file for the parsers that only take a path: one per process in /dev/shm
//     (memory-backed, so writing it per input is cheap), rewritten for every input;
//   - the paths of the committed test data (tests/models/data/).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "kernels/error.hpp"

namespace tori::fuzz {

// Prints "fuzz finding: <what>" and aborts.
[[noreturn]] void finding(const std::string& what);
// A property the parser promises; a finding when it does not hold.
inline void check(bool ok, const std::string& what) {
  if (!ok) finding(what);
}
[[noreturn]] void unexpected_exception(const std::exception* e);

// Runs f(): true if it returned, false if it threw tori::Error (input refused cleanly). Any
// other exception is a finding.
template <typename F>
bool expected(F&& f) {
  try {
    f();
    return true;
  } catch (const tori::Error&) {
    return false;
  } catch (const std::exception& e) {
    unexpected_exception(&e);
  } catch (...) {
    unexpected_exception(nullptr);
  }
}

// The product of `factor` and `dims`, exact up to 2^64 and saturating above (stays > 2^64), so that
// an overflow in the parser's own arithmetic cannot hide behind one in the check.
template <typename Dims>
unsigned __int128 saturated_product(uint64_t factor, const Dims& dims) {
  unsigned __int128 p = factor;
  bool zero = false;
  for (auto d : dims) {
    if (d == 0) zero = true;
    else if (p <= UINT64_MAX) p *= static_cast<uint64_t>(d);
  }
  return zero ? 0 : p;
}

class ScratchFile {
 public:
  // `suffix` ends the file name (".gguf": the tokenizer picks its reader by extension).
  explicit ScratchFile(const std::string& suffix);
  ~ScratchFile();
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  // Replaces the file's contents with the input; returns its path.
  const std::string& write(const uint8_t* data, size_t size);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// tests/models/data/<file> in the source tree.
std::string test_data(const std::string& file);

}  // namespace tori::fuzz

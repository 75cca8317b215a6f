#pragma once
// tori::Error — the one exception type every layer throws for bad input or impossible requests.
// The message must name the file/key/flag, the bad value and the allowed values, so that `main`
// can print it once (rank 0) and exit non-zero on every rank.
#include <stdexcept>
#include <string>

namespace tori {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bad user input (config file, flag, prompt): printed without a stack of context, exit code 2.
class InputError : public Error {
 public:
  explicit InputError(const std::string& what) : Error(what) {}
};

}  // namespace tori

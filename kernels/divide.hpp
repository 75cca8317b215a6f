#pragma once
// divide(n, parts, what): the single place every partition size goes through. Throws a tori::Error
// naming the dimension and both numbers when n does not split evenly into `parts`.
#include <cstdint>
#include <string>

#include "kernels/error.hpp"

namespace tori {

inline int64_t divide(int64_t n, int64_t parts, const std::string& what) {
  if (parts <= 0)
    throw Error("cannot split " + what + " into " + std::to_string(parts) + " parts");
  if (n % parts != 0)
    throw Error(what + " = " + std::to_string(n) + " is not divisible by " + std::to_string(parts));
  return n / parts;
}

}  // namespace tori

#pragma once
// SplitMix64's finaliser: a counter-based hash that turns (seed, counter) into well-mixed 64 random
// bits. Used wherever a value must be reproducible from its coordinates alone, on any rank:
// synthetic weights (seed, tensor, index) and sampling draws (seed, sequence, step).
#include <cstdint>

namespace tori::kernels {

constexpr uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace tori::kernels

#include "kernels/record.hpp"

#include <algorithm>
#include <cstdio>

namespace tori::kernels {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<double> time_repeats(const std::function<void()>& fn, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> out;
  out.reserve(static_cast<size_t>(repeats));
  for (int i = 0; i < repeats; ++i) {
    double t0 = now_s();
    fn();
    out.push_back(now_s() - t0);
  }
  return out;
}

void emit(const nlohmann::json& record) {
  std::string line = record.dump();
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace tori::kernels

#include "collectives/link_model.hpp"

namespace tori::collectives {

double LinkModel::seconds(const AxisTraffic& t, int lanes) const {
  double s = 0;
  for (const Traffic& a : t) {
    if (a.messages == 0 && a.bytes == 0) continue;
    const double steps = double(a.messages) / double(lanes);
    s += steps * latency_us * 1e-6;
    if (gbps > 0) s += double(a.bytes) / (double(lanes) * gbps * 1e9);
  }
  return s;
}

}  // namespace tori::collectives

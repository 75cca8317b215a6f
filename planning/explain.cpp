#include "planning/explain.hpp"

namespace tori::planning {

std::vector<TimePart> time_parts(const StepTime& t, bool overlapped) {
  const std::array<double, kTimeParts> alone = t.alone();
  const std::array<double, kTimeParts>& exposed = overlapped ? t.exposed_overlap : t.exposed_serial;
  std::vector<TimePart> out;
  auto add = [&](std::string name, size_t i) {
    if (alone[i] > 0) out.push_back({std::move(name), alone[i], exposed[i]});
  };
  add("compute", kPartCompute);
  add("weights", kPartWeights);
  add("kv_cache", kPartKv);
  add("overhead", kPartOverhead);
  for (collectives::Collective k : collectives::kCollectives)
    for (collectives::Axis a : collectives::kAxes)
      add(std::string(collectives::collective_name(k)) + " " + collectives::axis_name(a), comm_part(k, a));
  add("sync", kPartSync);
  add("wait", kPartWait);
  return out;
}

}  // namespace tori::planning

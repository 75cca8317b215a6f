#include <catch2/catch.hpp>

#include "collectives/link_model.hpp"

using namespace tori::collectives;

TEST_CASE("the link model charges latency per ring step and bytes over the link", "[link]") {
  LinkModel off;
  CHECK_FALSE(off.enabled());
  LinkModel m{2.0, 10.0};  // 2 GB/s per direction, 10 µs per message
  AxisTraffic t{};
  t[0] = {4'000'000, 3};   // x: 3 steps, 4 MB
  t[2] = {1'000'000, 1};   // z: 1 step, 1 MB
  // one lane: 4 steps x 10 µs + 5 MB / 2 GB/s
  CHECK(m.seconds(t, 1) == Approx(4 * 10e-6 + 5e6 / 2e9));
  // bidirectional ring: messages count both lanes, each lane carries half the bytes
  CHECK(m.seconds(t, 2) == Approx(2 * 10e-6 + 5e6 / 4e9));
  CHECK(m.seconds(AxisTraffic{}, 1) == 0.0);
}

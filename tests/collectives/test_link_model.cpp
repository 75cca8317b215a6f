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

TEST_CASE("the link clock queues transfers on one link and runs different links side by side", "[link]") {
  using namespace std::chrono;
  LinkModel m{1.0, 0.0};  // 1 GB/s: 1 MB takes 1 ms
  LinkClock clock;
  const auto t0 = LinkClock::Clock::now();
  AxisTraffic x{}, y{};
  x[0] = {1'000'000, 1};
  y[1] = {1'000'000, 1};
  auto ms = [&](LinkClock::Clock::time_point t) { return duration<double, std::milli>(t - t0).count(); };
  // two transfers forward on x: the second waits for the first
  auto a = clock.reserve(m, x, LinkUse::forward, t0);
  auto b = clock.reserve(m, x, LinkUse::forward, t0);
  CHECK(ms(a.start) == Approx(0).margin(1e-9));
  CHECK(ms(a.end) == Approx(1.0));
  CHECK(ms(b.start) == Approx(1.0));
  CHECK(ms(b.end) == Approx(2.0));
  // backward on x and forward on y are other links: free at once
  CHECK(ms(clock.reserve(m, x, LinkUse::backward, t0).end) == Approx(1.0));
  CHECK(ms(clock.reserve(m, y, LinkUse::forward, t0).end) == Approx(1.0));
  // a bidirectional transfer on x needs both directions free (forward until 2 ms), and carries
  // half the bytes on each: 0.5 ms
  auto c = clock.reserve(m, x, LinkUse::both, t0);
  CHECK(ms(c.start) == Approx(2.0));
  CHECK(ms(c.end) == Approx(2.5));
  // no traffic: done when ready, links untouched
  auto d = clock.reserve(m, AxisTraffic{}, LinkUse::forward, t0);
  CHECK(d.end == t0);
  clock.reset();
  CHECK(ms(clock.reserve(m, x, LinkUse::forward, t0).end) == Approx(1.0));
}

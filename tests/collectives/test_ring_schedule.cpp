// Ring neighbour/order maths, checked by simulating whole rings without MPI.
#include <catch2/catch.hpp>

#include <vector>

#include "collectives/ring_schedule.hpp"

using namespace tori::collectives;

TEST_CASE("ring neighbours wrap both ways", "[ring]") {
  CHECK(ring_neighbour(4, 3, +1) == 0);
  CHECK(ring_neighbour(4, 0, -1) == 3);
  CHECK(ring_neighbour(1, 0, +1) == 0);
  CHECK(wrap(-7, 3) == 2);
}

TEST_CASE("ring all-gather schedule delivers every block", "[ring]") {
  for (int n = 1; n <= 9; ++n)
    for (int dir : {+1, -1}) {
      // have[m][g]: member m holds block g.
      std::vector<std::vector<bool>> have(n, std::vector<bool>(n, false));
      for (int m = 0; m < n; ++m) have[m][m] = true;
      for (int s = 0; s + 1 < n; ++s) {
        auto next = have;
        for (int m = 0; m < n; ++m) {
          RingStep st = all_gather_step(n, m, s, dir);
          int to = ring_neighbour(n, m, dir);
          REQUIRE(have[m][st.send_block]);  // only send what has arrived
          CHECK(all_gather_step(n, to, s, dir).recv_block == st.send_block);
          next[to][st.send_block] = true;
        }
        have = next;
      }
      for (int m = 0; m < n; ++m)
        for (int g = 0; g < n; ++g) CHECK(have[m][g]);
    }
}

TEST_CASE("ring reduce-scatter schedule sums every block onto its owner", "[ring]") {
  for (int n = 2; n <= 9; ++n)
    for (int dir : {+1, -1}) {
      // part[m][g]: bitmask of members whose summand of block g is in m's running partial.
      std::vector<std::vector<unsigned>> part(n, std::vector<unsigned>(n));
      for (int m = 0; m < n; ++m)
        for (int g = 0; g < n; ++g) part[m][g] = 1u << m;
      for (int s = 0; s + 1 < n; ++s) {
        auto next = part;
        for (int m = 0; m < n; ++m) {
          RingStep st = reduce_scatter_step(n, m, s, dir);
          int to = ring_neighbour(n, m, dir);
          CHECK(reduce_scatter_step(n, to, s, dir).recv_block == st.send_block);
          unsigned own = 1u << to;
          CHECK((part[m][st.send_block] & own) == 0);  // never counted twice
          next[to][st.send_block] = part[m][st.send_block] | own;
        }
        part = next;
      }
      for (int m = 0; m < n; ++m) CHECK(part[m][m] == (1u << n) - 1);
    }
}

TEST_CASE("ring all-to-all store and forward delivers every piece", "[ring]") {
  for (int n = 1; n <= 9; ++n)
    for (bool both : {false, true}) {
      // got[m][src] = destination written on the piece m received from src (-1: none).
      std::vector<std::vector<int>> got(n, std::vector<int>(n, -1));
      for (int m = 0; m < n; ++m) got[m][m] = m;
      CHECK(all_to_all_reach_right(n, both) + all_to_all_reach_left(n, both) == n - 1);
      if (both) CHECK(all_to_all_reach_right(n, both) <= n / 2);
      for (auto [dir, reach] : {std::pair{+1, all_to_all_reach_right(n, both)},
                                std::pair{-1, all_to_all_reach_left(n, both)}}) {
        // bundle[m] = list of (source, destination) pieces member m sends this step.
        std::vector<std::vector<std::pair<int, int>>> bundle(n);
        for (int m = 0; m < n; ++m)
          for (int j = 0; j < reach; ++j) bundle[m].push_back({m, all_to_all_first_dest(n, m, dir, j)});
        for (int k = 1; k <= reach; ++k) {
          std::vector<std::vector<std::pair<int, int>>> next(n);
          for (int m = 0; m < n; ++m) {
            REQUIRE(static_cast<int>(bundle[m].size()) == all_to_all_bundle(reach, k));
            int to = ring_neighbour(n, m, dir);
            auto recv = bundle[m];
            CHECK(recv.front().first == all_to_all_source(n, to, dir, k));
            got[to][recv.front().first] = recv.front().second;
            next[to].assign(recv.begin() + 1, recv.end());
          }
          bundle = next;
        }
      }
      for (int m = 0; m < n; ++m)
        for (int src = 0; src < n; ++src) CHECK(got[m][src] == m);
    }
}

TEST_CASE("balanced parts cover the range with lengths differing by at most one", "[ring]") {
  for (int64_t n : {0, 1, 5, 17, 100})
    for (int parts = 1; parts <= 7; ++parts) {
      int64_t next = 3, lo = n, hi = 0;
      for (int i = 0; i < parts; ++i) {
        Span s = balanced_part(3, n, parts, i);
        CHECK(s.offset == next);
        next += s.length;
        lo = std::min(lo, s.length);
        hi = std::max(hi, s.length);
      }
      CHECK(next == 3 + n);
      CHECK(hi - lo <= 1);
    }
}

#include "collectives/ring_stage.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "collectives/mpi_check.hpp"
#include "collectives/reduce.hpp"
#include "collectives/request_wait.hpp"

namespace tori::collectives {

namespace {

// A lane's messages carry its direction in the tag, so the two lanes of a 2-member ring (where
// both neighbours are the same rank) never match each other's messages.
int lane_tag(int dir) { return dir > 0 ? kTagRight : kTagLeft; }

// Largest message: MPI counts are int; 1 GiB keeps pieces aligned.
constexpr size_t kMaxMessageBytes = size_t{1} << 30;
size_t limit_of(size_t configured) {
  return configured ? std::min(configured, kMaxMessageBytes) : kMaxMessageBytes;
}
size_t move_limit(const CallContext& ctx) { return limit_of(ctx.message_bytes); }
size_t reduce_limit(const CallContext& ctx) { return limit_of(ctx.chunk_bytes); }

// Posts a transfer of `bytes` as messages of at most `limit` bytes (the receiver splits the same
// way, so messages match one to one).
void post_send(std::vector<MPI_Request>& reqs, const void* p, size_t bytes, int peer, int tag,
               MPI_Comm comm, size_t limit) {
  auto* c = static_cast<const std::byte*>(p);
  for (size_t off = 0; off < bytes; off += limit) {
    int n = static_cast<int>(std::min(limit, bytes - off));
    reqs.emplace_back();
    MPI_CHECK(MPI_Isend(c + off, n, MPI_BYTE, peer, tag, comm, &reqs.back()));
  }
}
void post_recv(std::vector<MPI_Request>& reqs, void* p, size_t bytes, int peer, int tag,
               MPI_Comm comm, size_t limit) {
  auto* c = static_cast<std::byte*>(p);
  for (size_t off = 0; off < bytes; off += limit) {
    int n = static_cast<int>(std::min(limit, bytes - off));
    reqs.emplace_back();
    MPI_CHECK(MPI_Irecv(c + off, n, MPI_BYTE, peer, tag, comm, &reqs.back()));
  }
}
void wait_all(std::vector<MPI_Request>& reqs) {
  if (!reqs.empty())
    complete(reqs.data(), static_cast<int>(reqs.size()));
  reqs.clear();
}

void count(const CallContext& ctx, Axis axis, size_t bytes) {
  if (ctx.traffic && bytes > 0) ctx.traffic->add(ctx.kind, axis, Traffic{bytes, 1});
}

// One lane's incoming partial sums during one reduce-scatter step: chunks received into a small
// rotating buffer and summed with my own summands into dst.
struct ReduceLane {
  int peer = 0, tag = 0;
  const float* own = nullptr;
  float* dst = nullptr;
  int64_t length = 0, chunk = 1;
  int64_t posted = 0, done = 0;  // chunks
  std::vector<MPI_Request> reqs;  // one per window slot
  float* window = nullptr;        // kReduceWindow · chunk floats

  int64_t chunks() const { return (length + chunk - 1) / chunk; }
  int64_t chunk_len(int64_t c) const { return std::min(chunk, length - c * chunk); }
  void post(MPI_Comm comm) {
    size_t slot = static_cast<size_t>(posted % kReduceWindow);
    MPI_CHECK(MPI_Irecv(window + slot * static_cast<size_t>(chunk),
                        static_cast<int>(chunk_len(posted) * 4), MPI_BYTE, peer, tag, comm,
                        &reqs[slot]));
    ++posted;
  }
  // Waits for the oldest outstanding chunk, sums it, posts the next; false when all are summed.
  bool advance(MPI_Comm comm) {
    if (done == chunks()) return false;
    size_t slot = static_cast<size_t>(done % kReduceWindow);
    complete(reqs[slot]);
    int64_t at = done * chunk;
    add_f32(dst + at, own + at, window + slot * static_cast<size_t>(chunk), chunk_len(done));
    ++done;
    if (posted < chunks()) post(comm);
    return true;
  }
};

}  // namespace

void run_all_gather_stage(const RingLink& ring, const Stage& stage, std::byte* buf,
                          size_t elem_bytes, const CallContext& ctx) {
  const int n = ring.coord.size, me = ring.coord.index;
  const size_t limit = move_limit(ctx);
  std::vector<MPI_Request> reqs;
  // Steps 0..n-2: every lane forwards to its next neighbour the block it received last step (its
  // own at step 0) and receives the next block from the other side, straight into place.
  for (int s = 0; s + 1 < n; ++s) {
    for (const Lane& lane : stage.lanes) {
      RingStep step = all_gather_step(n, me, s, lane.dir);
      const Span& in = lane.blocks[static_cast<size_t>(step.recv_block)];
      const Span& out = lane.blocks[static_cast<size_t>(step.send_block)];
      post_recv(reqs, buf + in.offset * static_cast<int64_t>(elem_bytes), static_cast<size_t>(in.length) * elem_bytes,
                ring_neighbour(n, me, -lane.dir), lane_tag(lane.dir), ring.comm, limit);
      size_t bytes = static_cast<size_t>(out.length) * elem_bytes;
      post_send(reqs, buf + out.offset * static_cast<int64_t>(elem_bytes), bytes, ring_neighbour(n, me, lane.dir),
                lane_tag(lane.dir), ring.comm, limit);
      count(ctx, ring.coord.axis, bytes);
    }
    wait_all(reqs);
  }
}

void run_reduce_scatter_stage(const RingLink& ring, const Stage& stage, const float* src,
                              float* work, float* final, const CallContext& ctx) {
  const int n = ring.coord.size, me = ring.coord.index;
  const Span mine = stage.blocks[static_cast<size_t>(me)];
  int64_t longest = 1;  // no window needs to exceed the longest block
  for (const Lane& lane : stage.lanes)
    for (const Span& blk : lane.blocks) longest = std::max(longest, blk.length);
  const int64_t chunk = std::clamp<int64_t>(static_cast<int64_t>(reduce_limit(ctx) / 4), 1, longest);
  std::vector<ReduceLane> lanes(stage.lanes.size());
  float* windows = ctx.scratch->get_as<float>(
      Scratch::window, lanes.size() * static_cast<size_t>(chunk * kReduceWindow));
  for (size_t i = 0; i < lanes.size(); ++i) {
    ReduceLane& l = lanes[i];
    l.window = windows + i * static_cast<size_t>(chunk * kReduceWindow);
    l.reqs.assign(kReduceWindow, MPI_REQUEST_NULL);
    l.chunk = chunk;
  }
  std::vector<MPI_Request> sends;
  for (int s = 0; s + 1 < n; ++s) {
    const bool last = s + 2 == n;
    // 1. Send: my running partial of the block this step names (my bare summand at step 0).
    for (const Lane& lane : stage.lanes) {
      const Span& b = lane.blocks[static_cast<size_t>(reduce_scatter_step(n, me, s, lane.dir).send_block)];
      const float* from = (s == 0 ? src : work) + b.offset;
      size_t bytes = static_cast<size_t>(b.length) * 4;
      post_send(sends, from, bytes, ring_neighbour(n, me, lane.dir), lane_tag(lane.dir), ring.comm,
                static_cast<size_t>(chunk) * 4);
      count(ctx, ring.coord.axis, bytes);
    }
    // 2. Receive the neighbour's partial of the next block chunk by chunk, adding my summand:
    //    into work (to be forwarded next step) or, at the last step, into my final block.
    for (size_t i = 0; i < lanes.size(); ++i) {
      const Lane& lane = stage.lanes[i];
      const Span& b = lane.blocks[static_cast<size_t>(reduce_scatter_step(n, me, s, lane.dir).recv_block)];
      ReduceLane& l = lanes[i];
      l.peer = ring_neighbour(n, me, -lane.dir);
      l.tag = lane_tag(lane.dir);
      l.own = src + b.offset;
      l.dst = last ? final + (b.offset - mine.offset) : work + b.offset;
      l.length = b.length;
      l.posted = l.done = 0;
      while (l.posted < std::min<int64_t>(kReduceWindow, l.chunks())) l.post(ring.comm);
    }
    for (bool more = true; more;) {
      more = false;
      for (auto& l : lanes) more = l.advance(ring.comm) || more;
    }
    // 3. This step's sends must finish before their buffers are overwritten next step.
    wait_all(sends);
  }
}

void run_all_to_all_stage(const RingLink& ring, LaneSplit split, const std::byte* in,
                          std::byte* out, size_t share_bytes, const CallContext& ctx) {
  const int n = ring.coord.size, me = ring.coord.index;
  const size_t limit = move_limit(ctx);
  const bool both = split == LaneSplit::both_ways;
  auto share = [&](auto* base, int j) { return base + static_cast<size_t>(j) * share_bytes; };
  // 0. My own share stays.
  std::memcpy(share(out, me), share(in, me), share_bytes);
  if (share_bytes == 0) return;
  struct A2aLane {
    int dir, reach;
    std::byte *a, *b;            // staging of reach shares each: receive into b, swapped every step
    const std::byte* next_send;  // the bundle to send next step
  };
  const int reach_right = all_to_all_reach_right(n, both), reach_left = all_to_all_reach_left(n, both);
  std::byte* staging = ctx.scratch->get(
      Scratch::staging, 2 * static_cast<size_t>(reach_right + reach_left) * share_bytes);
  std::vector<A2aLane> lanes;
  for (auto [dir, reach] : {std::pair{+1, reach_right}, std::pair{-1, reach_left}}) {
    if (reach == 0) continue;
    A2aLane l{dir, reach, staging, staging + static_cast<size_t>(reach) * share_bytes, nullptr};
    staging += 2 * static_cast<size_t>(reach) * share_bytes;
    // 1. My shares for destinations 1..reach steps away, nearest first: straight from `in` when
    //    they lie there in that order, else packed.
    if (reach == 1 || (dir > 0 && me + reach < n)) {
      l.next_send = share(in, all_to_all_first_dest(n, me, dir, 0));
    } else {
      for (int j = 0; j < reach; ++j)
        std::memcpy(share(l.a, j), share(in, all_to_all_first_dest(n, me, dir, j)), share_bytes);
      l.next_send = l.a;
    }
    lanes.push_back(l);
  }
  std::vector<MPI_Request> reqs;
  int steps = 0;
  for (auto& l : lanes) steps = std::max(steps, l.reach);
  // 2. Steps 1..reach: send the bundle on, receive the neighbour's; its first share is mine (from
  //    member me - dir·k), the rest travel on next step. A one-share bundle lands in place.
  for (int k = 1; k <= steps; ++k) {
    for (auto& l : lanes) {
      if (k > l.reach) continue;
      const int bundle = all_to_all_bundle(l.reach, k);
      const size_t bytes = static_cast<size_t>(bundle) * share_bytes;
      std::byte* to = bundle == 1 ? share(out, all_to_all_source(n, me, l.dir, k)) : l.b;
      post_recv(reqs, to, bytes, ring_neighbour(n, me, -l.dir), lane_tag(l.dir), ring.comm, limit);
      post_send(reqs, l.next_send, bytes, ring_neighbour(n, me, l.dir), lane_tag(l.dir), ring.comm, limit);
      count(ctx, ring.coord.axis, bytes);
    }
    wait_all(reqs);
    for (auto& l : lanes) {
      if (k > l.reach || all_to_all_bundle(l.reach, k) == 1) continue;
      std::memcpy(share(out, all_to_all_source(n, me, l.dir, k)), l.b, share_bytes);
      l.next_send = l.b + share_bytes;
      std::swap(l.a, l.b);
    }
  }
}

void run_ppermute(const RingLink& ring, const std::byte* in, std::byte* out, size_t bytes,
                  int shift, const CallContext& ctx) {
  const int n = ring.coord.size, me = ring.coord.index;
  std::vector<MPI_Request> reqs;
  post_recv(reqs, out, bytes, wrap(me - shift, n), kTagPermute, ring.comm, move_limit(ctx));
  post_send(reqs, in, bytes, wrap(me + shift, n), kTagPermute, ring.comm, move_limit(ctx));
  count(ctx, ring.coord.axis, bytes);
  wait_all(reqs);
}

}  // namespace tori::collectives

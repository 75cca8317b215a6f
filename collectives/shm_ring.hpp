#pragma once
// ShmRing: ppermute between the neighbours of a ring whose members share a host, through shared
// memory and without a progress thread: the sender's own thread copies its data into the
// receiver's memory when the ppermute is started, and the receiver's own thread takes it when it
// waits — the way a TPU's DMA engine writes into the neighbour's memory without its core.
//
// Why: Open MPI moves a shared-memory message only inside MPI calls, on both sides, and Tori's
// started collectives run on a progress thread (progress_engine.hpp). A looped collective
// einsum's ring step therefore needed the progress threads of both ranks to be scheduled, and with
// more ranks than cores each wake-up of a progress thread on a busy core could wait for a
// scheduler slice: 4 ranks on 2 cores, ws2d decode, the loops spent 2× the plain collectives' time
// communicating (docs/measurements/overlap.md). Here a transfer is one memcpy by the sender at start and one
// by the receiver at wait, each on a thread that is running anyway. Measured against MPI (4 ranks
// on 2 cores, ws2d decode under a link model, runs alternated): looped 0.90–0.97× and looped-bidir
// 0.91–1.03× the step time — within the box's noise; the cores, not the hand-offs, bound that step.
//
// Channels: every member owns one channel per ring direction it receives from (shift +1 from
// member i−1, and with more than two members shift −1 ≡ n−1 from member i+1), of kSlots slots of
// slot_bytes each, and a header: written (stored by the sender after its copy), consumed (stored
// by the owner after its copy out), and per slot the time the sender published it (steady_clock
// is CLOCK_MONOTONIC: one clock for every process on the host). Transfer k of a channel (counted
// on both sides: the members start the ring's ppermutes in the same order, as every collective)
// uses slot k mod kSlots; the sender first waits until consumed ≥ k − kSlots, which is at once
// unless the receiver has fallen kSlots transfers behind. That wait cannot deadlock while every
// member keeps at most kSlots of its own receives on a channel unwaited (send() checks this):
// the slot it waits for was sent before, so its receiver can take it without anything further
// from this member. Receives complete in order: completing transfer r first takes any earlier
// ones still waiting (started ppermutes may be waited in any order).
//
// Segments are POSIX shared memory (shm_open, mapped by every member, the names unlinked as soon
// as all have mapped them, so nothing is left behind by a crash), made and reserved once at
// construction with collective calls on a duplicate of the ring's communicator. Plain shared memory rather than an MPI window keeps Open MPI's one-sided machinery out of
// every other collective's progress loop. If any member cannot map (no /dev/shm), the ring uses
// MPI. Transfers above slot_bytes (and rings spread over hosts) go through MPI
// on the progress thread, unchanged. Traffic and the link model are booked by the caller exactly
// as for an MPI ppermute.
#include <mpi.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "collectives/algorithm.hpp"
#include "kernels/tensor.hpp"

namespace tori::collectives {

class ShmRing {
 public:
  // Transfers in flight per ring direction (the looped einsums keep at most kEinsumPieces).
  static constexpr int kSlots = 8;
  // Largest transfer served by default: a decode step's pieces are tens of KiB (bench overlap's
  // ws2d decode, batch 8: 8–36 KiB); prefill's larger ones gain little (their copy dwarfs the
  // hand-off) and go through MPI. Per ring and rank: 1 MiB per direction, reserved in /dev/shm.
  static constexpr size_t kDefaultSlotBytes = size_t{128} << 10;

  // Collective over ring.comm: finds out whether all members share a host and, if so, maps the
  // members' segments (collectives over a duplicate of ring.comm; unmapped in the destructor).
  ShmRing(const RingLink& ring, size_t slot_bytes);
  ~ShmRing();
  ShmRing(const ShmRing&) = delete;
  ShmRing& operator=(const ShmRing&) = delete;

  // Whether a ppermute of `bytes` with `shift` (reduced mod n) goes through shared memory here;
  // the same answer on every member for the same arguments.
  bool serves(size_t bytes, int shift) const;

  // The receiving half of one transfer: which channel, which transfer of it, where it lands.
  struct Ticket {
    int channel = 0;
    uint64_t seq = 0;
    std::shared_ptr<std::chrono::steady_clock::time_point> published;  // set when received
  };
  // Starts ppermute(shift): copies `bytes` of `in` into the next member's slot now and returns the
  // ticket for what arrives from the previous member into `out` (held until received).
  Ticket send(const std::byte* in, kernels::Tensor out, size_t bytes, int shift);
  // Whether the ticket's data has been published by its sender (never blocks).
  bool arrived(const Ticket& t) const;
  // Blocks until it has: spinning when the host's threads fit its cores (request_wait.hpp), else
  // asleep on a futex in the channel's header that the sender wakes after publishing, so a
  // waiting rank leaves its core to the ranks computing what it waits for.
  void wait_arrival(const Ticket& t);
  // Copies the ticket's data (and any earlier one of its channel still waiting) into its `out`;
  // the ticket must have arrived. Returns when its sender published it.
  std::chrono::steady_clock::time_point receive(const Ticket& t);

  // Transfers this member has sent through shared memory (tests: that it was used at all).
  uint64_t sent() const { return sent_[0] + sent_[1]; }
  // Skips the destructor's collective barrier (this rank failed; peers may never join).
  void abandon() { abandoned_ = true; }

 private:
  // Header: written at 0, consumed at 64, publish times at 128, the futex word (the low 32 bits of
  // written) and its sleepers' count at kFutex.
  static constexpr size_t kHeader = 256;
  static constexpr size_t kFutex = 128 + kSlots * sizeof(int64_t);
  static_assert(kFutex + 2 * sizeof(uint32_t) <= kHeader, "the header's fields must fit it");
  std::byte* channel_base(int member, int ch) const;
  std::byte* slot(std::byte* channel, uint64_t k) const;
  void unmap();
  static constexpr int kNameBytes = 64;

  struct Posted {
    uint64_t seq;
    kernels::Tensor out;
    size_t bytes;
    std::shared_ptr<std::chrono::steady_clock::time_point> published;
  };

  RingLink ring_;
  size_t slot_bytes_ = 0;
  bool abandoned_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
  bool mapped_ = false;
  size_t segment_bytes_ = 0;
  int channels_ = 0;                  // 1 (two members) or 2
  std::vector<std::byte*> segment_;   // every member's segment, as mapped here
  std::array<uint64_t, 2> sent_{};    // transfers sent into each channel of the next member
  std::array<uint64_t, 2> posted_{};  // receives started on each of my channels
  std::array<std::deque<Posted>, 2> waiting_;  // started, not yet copied out, in order
};

// "shm" -> true (ring neighbours on one host exchange through ShmRing), "mpi" -> false; anything
// else is an InputError naming `flag` and the allowed values.
bool parse_ppermute_transport(const std::string& s, const std::string& flag = "--ppermute");

}  // namespace tori::collectives

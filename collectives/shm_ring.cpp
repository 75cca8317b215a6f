#include "collectives/shm_ring.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "collectives/mpi_check.hpp"
#include "collectives/request_wait.hpp"
#include "collectives/ring_schedule.hpp"
#include "collectives/watchdog.hpp"
#include "kernels/error.hpp"

namespace tori::collectives {

namespace {
using Clock = std::chrono::steady_clock;
template <typename T>
std::atomic_ref<T> at(std::byte* p) {
  return std::atomic_ref<T>(*reinterpret_cast<T*>(p));
}
std::atomic_ref<uint64_t> written(std::byte* ch) { return at<uint64_t>(ch); }
std::atomic_ref<uint64_t> consumed(std::byte* ch) { return at<uint64_t>(ch + 64); }
std::atomic_ref<int64_t> published(std::byte* ch, uint64_t k, int slots) {
  return at<int64_t>(ch + 128 + size_t(k % uint64_t(slots)) * sizeof(int64_t));
}

// A futex word shared between processes (no FUTEX_PRIVATE_FLAG), and its sleepers' count.
std::atomic_ref<uint32_t> futex_word(std::byte* ch, size_t at_offset) { return at<uint32_t>(ch + at_offset); }
std::atomic_ref<uint32_t> sleepers(std::byte* ch, size_t at_offset) { return at<uint32_t>(ch + at_offset + 4); }
void futex_wait(std::byte* word, uint32_t expected, std::chrono::microseconds timeout) {
  timespec ts{0, long(timeout.count()) * 1000};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);  // any result: recheck
}
void futex_wake_all(std::byte* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}
// A sleeper re-checks at least this often (a lost wake-up costs at most this).
constexpr std::chrono::microseconds kFutexTimeout{2000};

}  // namespace

ShmRing::ShmRing(const RingLink& ring, size_t slot_bytes) : ring_(ring), slot_bytes_(slot_bytes) {
  const int n = ring_.coord.size;
  if (n < 2 || slot_bytes_ == 0) return;
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(ring_.comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int node_size = 0;
  MPI_CHECK(MPI_Comm_size(node, &node_size));
  MPI_CHECK(MPI_Comm_free(&node));
  if (node_size != n) return;  // a ring spread over hosts: MPI
  channels_ = n > 2 ? 2 : 1;
  slot_bytes_ = (slot_bytes_ + 63) / 64 * 64;  // slots on cache-line boundaries
  MPI_CHECK(MPI_Comm_dup(ring_.comm, &comm_));
  segment_bytes_ = size_t(channels_) * (kHeader + size_t(kSlots) * slot_bytes_);
  // 1. Each member creates its segment and names it.
  static std::atomic<int> serial{0};
  std::array<char, kNameBytes> name{};
  std::snprintf(name.data(), name.size(), "/tori-%d-%d", int(getpid()), serial.fetch_add(1));
  void* mine = MAP_FAILED;
  const int created = shm_open(name.data(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (const int fd = created; fd >= 0) {
    // Reserved now (posix_fallocate, not a sparse ftruncate): a full /dev/shm then means MPI for
    // this ring instead of a SIGBUS at the first transfer that touches a missing page.
    if (posix_fallocate(fd, 0, off_t(segment_bytes_)) == 0)
      mine = mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
  }
  // 2. Every member maps every other's; any failure anywhere and the ring keeps using MPI.
  std::vector<char> names(size_t(n) * kNameBytes);
  MPI_CHECK(MPI_Allgather(name.data(), kNameBytes, MPI_CHAR, names.data(), kNameBytes, MPI_CHAR, comm_));
  segment_.assign(size_t(n), nullptr);
  bool ok = mine != MAP_FAILED;
  if (ok) segment_[size_t(ring_.coord.index)] = static_cast<std::byte*>(mine);
  for (int m = 0; m < n && ok; ++m) {
    if (m == ring_.coord.index) continue;
    const int fd = shm_open(&names[size_t(m) * kNameBytes], O_RDWR, 0600);
    void* p = fd >= 0 ? mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (fd >= 0) close(fd);
    if (p == MAP_FAILED) ok = false;
    else segment_[size_t(m)] = static_cast<std::byte*>(p);
  }
  if (ok)
    for (int ch = 0; ch < channels_; ++ch) std::memset(channel_base(ring_.coord.index, ch), 0, kHeader);
  int all_ok = ok ? 1 : 0;
  // Nobody writes into a segment before its owner zeroed it, and all have opened every name.
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_MIN, comm_));
  if (created >= 0) shm_unlink(name.data());  // the mappings stay; no name is left behind
  if (!all_ok) unmap();
  mapped_ = all_ok == 1;
}

void ShmRing::unmap() {
  for (std::byte*& p : segment_)
    if (p) munmap(p, segment_bytes_), p = nullptr;
}

ShmRing::~ShmRing() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized || abandoned_) return;  // the mappings go with the process
  // No member may still be copying out of a slot when its segment goes.
  if (mapped_) MPI_Barrier(comm_);
  unmap();
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

bool ShmRing::serves(size_t bytes, int shift) const {
  const int n = ring_.coord.size;
  return mapped_ && !abandoned_ && bytes > 0 && bytes <= slot_bytes_ && (shift == 1 || shift == n - 1);
}

std::byte* ShmRing::channel_base(int member, int ch) const {
  return segment_[size_t(member)] + size_t(ch) * (kHeader + size_t(kSlots) * slot_bytes_);
}

std::byte* ShmRing::slot(std::byte* channel, uint64_t k) const {
  return channel + kHeader + size_t(k % uint64_t(kSlots)) * slot_bytes_;
}

ShmRing::Ticket ShmRing::send(const std::byte* in, kernels::Tensor out, size_t bytes, int shift) {
  const int n = ring_.coord.size, me = ring_.coord.index;
  const int ch = shift == 1 ? 0 : 1;  // with two members, shift n − 1 is shift 1
  if (waiting_[size_t(ch)].size() >= size_t(kSlots))
    throw Error("ppermute through shared memory on rank " + std::to_string(me) + " of the " +
                std::string(1, axis_name(ring_.coord.axis)) + " ring: more than " + std::to_string(kSlots) +
                " started transfers not yet waited in one direction (allowed: at most " + std::to_string(kSlots) +
                ")");
  // Send: into the next member's channel for this direction, once its slot has been emptied.
  std::byte* dst = channel_base(wrap(me + shift, n), ch);
  const uint64_t k = ++sent_[size_t(ch)];
  if (k > uint64_t(kSlots) && consumed(dst).load(std::memory_order_acquire) + kSlots < k)
    poll_until([&] { return consumed(dst).load(std::memory_order_acquire) + kSlots >= k; });
  std::memcpy(slot(dst, k), in, bytes);
  published(dst, k, kSlots).store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  written(dst).store(k, std::memory_order_seq_cst);
  // Wake the receiver if it sleeps (see wait_arrival for the order of these steps).
  futex_word(dst, kFutex).store(uint32_t(k), std::memory_order_seq_cst);
  if (sleepers(dst, kFutex).load(std::memory_order_seq_cst) > 0) futex_wake_all(dst + kFutex);
  // Receive: posted on my own channel, taken in receive().
  const uint64_t r = ++posted_[size_t(ch)];
  auto when = std::make_shared<Clock::time_point>();
  waiting_[size_t(ch)].push_back(Posted{r, std::move(out), bytes, when});
  return Ticket{ch, r, when};
}

bool ShmRing::arrived(const Ticket& t) const {
  return written(channel_base(ring_.coord.index, t.channel)).load(std::memory_order_seq_cst) >= t.seq;
}

void ShmRing::wait_arrival(const Ticket& t) {
  if (arrived(t)) return;
  if (spin_allowed()) return poll_until([&] { return arrived(t); });
  std::byte* mine = channel_base(ring_.coord.index, t.channel);
  const watchdog::Wait wait;  // a peer that never answers ends the run (watchdog.hpp)
  while (!arrived(t)) {
    wait.check(Clock::now());
    // Announce the sleep, read the word, re-check, sleep only if the word is unchanged: a sender
    // that publishes after the re-check changes the word (futex_wait returns at once) and, seeing
    // a sleeper, wakes it.
    sleepers(mine, kFutex).fetch_add(1, std::memory_order_seq_cst);
    const uint32_t word = futex_word(mine, kFutex).load(std::memory_order_seq_cst);
    if (!arrived(t)) futex_wait(mine + kFutex, word, kFutexTimeout);
    sleepers(mine, kFutex).fetch_sub(1, std::memory_order_seq_cst);
  }
}

Clock::time_point ShmRing::receive(const Ticket& t) {
  std::byte* mine = channel_base(ring_.coord.index, t.channel);
  auto& waiting = waiting_[size_t(t.channel)];
  while (!waiting.empty() && waiting.front().seq <= t.seq) {
    Posted& p = waiting.front();
    wait_arrival(Ticket{t.channel, p.seq, p.published});
    std::memcpy(p.out.raw(), slot(mine, p.seq), p.bytes);
    *p.published = Clock::time_point(Clock::duration(published(mine, p.seq, kSlots).load(std::memory_order_relaxed)));
    consumed(mine).store(p.seq, std::memory_order_release);
    waiting.pop_front();
  }
  return *t.published;
}

bool parse_ppermute_transport(const std::string& s, const std::string& flag) {
  if (s == "shm") return true;
  if (s == "mpi") return false;
  throw InputError(flag + ": '" + s + "' (allowed: shm, mpi)");
}

}  // namespace tori::collectives

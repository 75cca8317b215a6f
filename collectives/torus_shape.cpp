#include "collectives/torus_shape.hpp"

#include <algorithm>
#include <charconv>

#include "kernels/error.hpp"

namespace tori::collectives {

int TorusShape::group_size(Axes axes) const {
  int n = 1;
  for (Axis a : axes.list()) n *= (*this)[a];
  return n;
}

std::string TorusShape::str() const {
  return std::to_string(dims[0]) + "x" + std::to_string(dims[1]) + "x" + std::to_string(dims[2]);
}

TorusShape TorusShape::parse(std::string_view s, std::string_view what) {
  auto bad = [&](const std::string& why) {
    return InputError(std::string(what) + ": bad torus shape '" + std::string(s) + "': " + why +
                      " (allowed: XxYxZ with positive integers, e.g. 2x2x2, 4x2x1; or auto)");
  };
  TorusShape shape;
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    size_t end = i < 2 ? s.find('x', pos) : s.size();
    if (end == std::string_view::npos) throw bad("expected three sizes separated by 'x'");
    std::string_view part = s.substr(pos, end - pos);
    int v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || p != part.data() + part.size())
      throw bad("'" + std::string(part) + "' is not a number");
    if (v < 1) throw bad("sizes must be at least 1");
    shape.dims[static_cast<size_t>(i)] = v;
    pos = end + 1;
  }
  return shape;
}

TorusShape auto_torus_shape(int ranks) {
  if (ranks < 1)
    throw Error("cannot build a torus of " + std::to_string(ranks) + " ranks (allowed: >= 1)");
  switch (ranks) {  // the paper's configurations (docs/paper.md "Notation")
    case 8: return TorusShape{{2, 2, 2}};
    case 16: return TorusShape{{2, 4, 2}};
    case 32: return TorusShape{{4, 2, 4}};
    case 64: return TorusShape{{4, 4, 4}};
    case 128: return TorusShape{{8, 4, 4}};
    default: break;
  }
  std::vector<int> primes;
  int n = ranks;
  for (int p = 2; p * p <= n; ++p)
    while (n % p == 0) {
      primes.push_back(p);
      n /= p;
    }
  if (n > 1) primes.push_back(n);
  std::sort(primes.rbegin(), primes.rend());
  TorusShape shape;
  for (int p : primes) {
    auto smallest = std::min_element(shape.dims.begin(), shape.dims.end());  // first of equals
    *smallest *= p;
  }
  return shape;
}

std::vector<TorusShape> all_torus_shapes(int ranks) {
  std::vector<TorusShape> out;
  for (int x = 1; x <= ranks; ++x)
    for (int y = 1; x * y <= ranks; ++y)
      if (ranks % (x * y) == 0) out.push_back(TorusShape{{x, y, ranks / (x * y)}});
  return out;
}

TorusShape resolve_torus_shape(std::string_view flag, int ranks, std::string_view what) {
  if (flag.empty() || flag == "auto") return auto_torus_shape(ranks);
  TorusShape shape = TorusShape::parse(flag, what);
  if (shape.ranks() != ranks)
    throw InputError(std::string(what) + ": torus " + shape.str() + " has " +
                     std::to_string(shape.ranks()) + " chips but there are " +
                     std::to_string(ranks) + " MPI ranks (allowed: XxYxZ with X·Y·Z = " +
                     std::to_string(ranks) + ", e.g. " + auto_torus_shape(ranks).str() +
                     "; or auto)");
  return shape;
}

Coords coords_of(const TorusShape& shape, int rank) {
  if (rank < 0 || rank >= shape.ranks())
    throw Error("rank " + std::to_string(rank) + " is outside torus " + shape.str());
  Coords c;
  c.c[2] = rank % shape.dims[2];
  c.c[1] = (rank / shape.dims[2]) % shape.dims[1];
  c.c[0] = rank / (shape.dims[2] * shape.dims[1]);
  return c;
}

int rank_of(const TorusShape& shape, Coords c) {
  return (c.c[0] * shape.dims[1] + c.c[1]) * shape.dims[2] + c.c[2];
}

int shard_index(const TorusShape& shape, Coords c, Axes axes) {
  int index = 0;
  for (Axis a : axes.list()) index = index * shape[a] + c[a];
  return index;
}

Coords member_coords(const TorusShape& shape, Coords me, Axes axes, int index) {
  if (index < 0 || index >= shape.group_size(axes))
    throw Error("member " + std::to_string(index) + " is outside the " + axes.str() +
                " group of torus " + shape.str());
  std::vector<Axis> list = axes.list();
  for (auto it = list.rbegin(); it != list.rend(); ++it) {  // least significant digit first
    me[*it] = index % shape[*it];
    index /= shape[*it];
  }
  return me;
}

}  // namespace tori::collectives

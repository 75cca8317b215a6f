#include "collectives/axes.hpp"

#include "kernels/error.hpp"

namespace tori::collectives {

char axis_name(Axis a) { return "xyz"[static_cast<int>(a)]; }

Axis parse_axis(std::string_view s, std::string_view what) {
  if (s == "x") return Axis::x;
  if (s == "y") return Axis::y;
  if (s == "z") return Axis::z;
  throw InputError(std::string(what) + ": unknown axis '" + std::string(s) + "' (allowed: x, y, z)");
}

Axes Axes::parse(std::string_view s, std::string_view what) {
  if (s.empty() || s == "none") return Axes::none;
  Axes out;
  for (char c : s) {
    Axes one;
    if (c == 'x') one = Axes::x;
    else if (c == 'y') one = Axes::y;
    else if (c == 'z') one = Axes::z;
    else
      throw InputError(std::string(what) + ": bad axis set '" + std::string(s) +
                       "' (allowed: letters x, y, z, e.g. x, yz, xyz; or none)");
    if (!(out & one).empty())
      throw InputError(std::string(what) + ": axis '" + std::string(1, c) + "' repeated in '" +
                       std::string(s) + "' (allowed: each of x, y, z at most once)");
    out = out | one;
  }
  return out;
}

std::string Axes::str() const {
  if (empty()) return "none";
  std::string s;
  for (Axis a : kAxes)
    if (contains(a)) s += axis_name(a);
  return s;
}

std::vector<Axis> Axes::list() const {
  std::vector<Axis> out;
  for (Axis a : kAxes)
    if (contains(a)) out.push_back(a);
  return out;
}

}  // namespace tori::collectives

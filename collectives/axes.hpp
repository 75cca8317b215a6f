#pragma once
// Axis and Axes: the torus axes x, y, z and sets of them, written as in the paper ("x", "yz",
// "xyz"). A collective is named by what it does over which axes: all_gather(t, dim, Axes::yz).
//
// Within a set the axes are always ordered x, y, z, and that order is the digit order of a rank's
// shard index along the set: x is the most significant digit (see torus_shape.hpp shard_index).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tori::collectives {

enum class Axis : uint8_t { x = 0, y = 1, z = 2 };
inline constexpr std::array<Axis, 3> kAxes{Axis::x, Axis::y, Axis::z};

char axis_name(Axis a);
// Parses "x" | "y" | "z"; throws tori::InputError naming `what` (a flag or key).
Axis parse_axis(std::string_view s, std::string_view what = "axis");

class Axes {
 public:
  constexpr Axes() = default;
  constexpr Axes(Axis a) : bits_(static_cast<uint8_t>(1u << static_cast<int>(a))) {}  // NOLINT: an axis is a one-axis set

  static const Axes none, x, y, z, xy, xz, yz, xyz;
  // The seven non-empty sets in a fixed order: x, y, z, xy, xz, yz, xyz.
  static const std::array<Axes, 7> all;

  // Parses letters from {x, y, z}, each at most once, in any order ("zy" == "yz"); "none" or "" is
  // the empty set. Throws tori::InputError naming `what` and the allowed values.
  static Axes parse(std::string_view s, std::string_view what = "axes");
  // Canonical text: "x", "yz", "xyz"; the empty set prints as "none".
  std::string str() const;

  constexpr bool contains(Axis a) const { return (bits_ >> static_cast<int>(a)) & 1u; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr int count() const { return (bits_ & 1) + ((bits_ >> 1) & 1) + ((bits_ >> 2) & 1); }
  constexpr uint8_t bits() const { return bits_; }
  // The axes of the set in x, y, z order (most significant shard digit first).
  std::vector<Axis> list() const;

  constexpr Axes operator|(Axes o) const { return from_bits(static_cast<uint8_t>(bits_ | o.bits_)); }
  constexpr Axes operator&(Axes o) const { return from_bits(static_cast<uint8_t>(bits_ & o.bits_)); }
  // The axes not in this set.
  constexpr Axes complement() const { return from_bits(static_cast<uint8_t>(~bits_ & 7u)); }
  constexpr bool operator==(const Axes&) const = default;

  static constexpr Axes from_bits(uint8_t b) {
    Axes a;
    a.bits_ = static_cast<uint8_t>(b & 7u);
    return a;
  }

 private:
  uint8_t bits_ = 0;
};

inline constexpr Axes Axes::none = Axes::from_bits(0);
inline constexpr Axes Axes::x = Axes::from_bits(1);
inline constexpr Axes Axes::y = Axes::from_bits(2);
inline constexpr Axes Axes::z = Axes::from_bits(4);
inline constexpr Axes Axes::xy = Axes::from_bits(3);
inline constexpr Axes Axes::xz = Axes::from_bits(5);
inline constexpr Axes Axes::yz = Axes::from_bits(6);
inline constexpr Axes Axes::xyz = Axes::from_bits(7);
inline constexpr std::array<Axes, 7> Axes::all{Axes::x,  Axes::y,  Axes::z,  Axes::xy,
                                               Axes::xz, Axes::yz, Axes::xyz};

}  // namespace tori::collectives

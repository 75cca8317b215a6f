#include "runtime/sharding.hpp"

#include <cctype>

#include "kernels/divide.hpp"
#include "kernels/error.hpp"

namespace tori::runtime {

namespace {
constexpr const char* kDims = "BLEFHKDTV";

void check_axes(const std::string& axes, std::string& used, const std::string& text) {
  for (char a : axes) {
    if (a != 'x' && a != 'y' && a != 'z')
      throw Error("sharding '" + text + "': axis '" + std::string(1, a) + "' is not x, y or z");
    if (used.find(a) != std::string::npos)
      throw Error("sharding '" + text + "': axis '" + std::string(1, a) + "' used twice");
    used += a;
  }
}
}  // namespace

Sharding::Sharding(std::vector<ShardedDim> dims, std::string partial)
    : dims_(std::move(dims)), partial_(std::move(partial)) {
  std::string used, text = str();
  for (auto& d : dims_) {
    if (std::string(kDims).find(d.dim) == std::string::npos)
      throw Error("sharding '" + text + "': unknown dimension '" + std::string(1, d.dim) + "' (allowed: " + kDims + ")");
    check_axes(d.axes, used, text);
  }
  std::string used_partial;
  check_axes(partial_, used_partial, text);
  for (char a : partial_)
    if (used.find(a) != std::string::npos)
      throw Error("sharding '" + text + "': axis '" + std::string(1, a) + "' both splits a dimension and sums");
}

Sharding Sharding::parse(const std::string& text) {
  std::vector<ShardedDim> dims;
  std::string partial;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ') {
      ++i;
    } else if (std::isupper(static_cast<unsigned char>(c))) {
      dims.push_back({c, ""});
      ++i;
      if (i < text.size() && text[i] == '_') {
        ++i;
        while (i < text.size() && std::islower(static_cast<unsigned char>(text[i]))) dims.back().axes += text[i++];
        if (dims.back().axes.empty()) throw Error("sharding '" + text + "': '_' without axes");
      }
    } else if (c == '{') {
      size_t close = text.find('}', i);
      if (close == std::string::npos) throw Error("sharding '" + text + "': unclosed '{'");
      partial = text.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      throw Error("sharding '" + text + "': unexpected '" + std::string(1, c) + "'");
    }
  }
  if (dims.empty()) throw Error("sharding '" + text + "': no dimensions");
  return Sharding(std::move(dims), std::move(partial));
}

const std::string& Sharding::axes_of(char dim) const {
  for (auto& d : dims_)
    if (d.dim == dim) return d.axes;
  throw Error("sharding '" + str() + "' has no dimension '" + std::string(1, dim) + "'");
}

std::string Sharding::str() const {
  // Activations (leading B) run their letters together as the paper does ("BLE_xyz"); weights
  // separate every dimension ("E F_xyz", "E_x F_yz").
  const bool activation = !dims_.empty() && dims_[0].dim == 'B';
  std::string s;
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i > 0 && (!activation || !dims_[i - 1].axes.empty())) s += ' ';
    s += dims_[i].dim;
    if (!dims_[i].axes.empty()) s += "_" + dims_[i].axes;
  }
  if (!partial_.empty()) s += " {" + partial_ + "}";
  return s;
}

int64_t axes_size(const std::string& axes, const int64_t torus_xyz[3]) {
  int64_t n = 1;
  for (char a : axes) n *= torus_xyz[a - 'x'];
  return n;
}

std::vector<int64_t> Sharding::shard_shape(const std::vector<int64_t>& full, const int64_t torus_xyz[3]) const {
  if (full.size() != dims_.size())
    throw Error("sharding '" + str() + "': " + std::to_string(full.size()) + " sizes for " +
                std::to_string(dims_.size()) + " dimensions");
  std::vector<int64_t> out(full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    const auto& d = dims_[i];
    out[i] = d.axes.empty() ? full[i]
                            : divide(full[i], axes_size(d.axes, torus_xyz),
                                     std::string(1, d.dim) + " over " + d.axes);
  }
  return out;
}

}  // namespace tori::runtime

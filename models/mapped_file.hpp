#pragma once
// MappedFile: a file memory-mapped read-only, for the checkpoint readers (safetensors, GGUF). A
// rank touches only the pages of its shard, and drop() hands pages just read back to the page
// cache, so the process's resident set holds its shard, not the file.
#include <cstddef>
#include <string>

namespace tori::models {

class MappedFile {
 public:
  // Throws tori::Error naming the path when it cannot be opened or mapped. An empty file maps to
  // size() == 0 and data() == nullptr.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return map_; }
  size_t size() const { return size_; }
  // Drops the pages overlapping bytes [begin, end) from this process's resident set.
  void drop(size_t begin, size_t end) const;

 private:
  int fd_ = -1;
  unsigned char* map_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tori::models

// SHA-256, for cache keys: compiled kernels are stored under the hash of everything that
// changes the binary.
#pragma once

#include <string>
#include <string_view>

namespace metalgpu {

class Sha256 {
 public:
  Sha256();
  Sha256& update(std::string_view data);
  std::string hex();  // finishes the hash

 private:
  void block(const unsigned char* p);
  unsigned int h_[8];
  unsigned char buf_[64];
  std::size_t buffered_ = 0;
  unsigned long long total_ = 0;
};

}  // namespace metalgpu

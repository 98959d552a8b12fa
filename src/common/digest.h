#pragma once
// SHA-256 (OpenSSL EVP), hex-encoded: SigV4 payload hashes and batch content digests.
#include <cstddef>
#include <string>
#include <string_view>

namespace bf {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  std::string hex();  // lowercase hex of the digest; call once

 private:
  void* ctx_;
};

std::string sha256_hex(std::string_view data);

}  // namespace bf

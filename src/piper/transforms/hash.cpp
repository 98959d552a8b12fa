// hash: a fingerprint of fields.   {hash: {fields: [src_ip, user], target: fp, algorithm: sha256}}
// Values are hashed as their text (strings as they are, other values as JSON), joined
// by a 0x1F unit separator, absent fields as empty. Hex output. sha256 (OpenSSL) or
// xxhash64 / xxh3 (libxxhash) — the latter much faster, but not for security.
#include <xxhash.h>

#include <boost/json/serialize.hpp>

#include <cstdio>

#include "common/digest.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

enum class Algorithm { sha256, xxhash64, xxh3 };

class Hash final : public Transform {
 public:
  Hash(std::vector<FieldPath> fields, FieldPath target, Algorithm a) : fields_(std::move(fields)), target_(std::move(target)), algo_(a) {}
  StepResult apply(Event& e, std::string&) const override {
    std::string input;
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (i) input += '\x1f';
      if (const boost::json::value* v = find_field(e, fields_[i])) {
        if (v->is_string()) input += v->get_string();
        else input += boost::json::serialize(*v);
      }
    }
    std::string hex;
    if (algo_ == Algorithm::sha256) {
      hex = sha256_hex(input);
    } else {
      uint64_t h = algo_ == Algorithm::xxh3 ? XXH3_64bits(input.data(), input.size()) : XXH64(input.data(), input.size(), 0);
      char buf[17];
      std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
      hex = buf;
    }
    set_field(e, target_, boost::json::string(hex));
    return StepResult::keep;
  }

 private:
  std::vector<FieldPath> fields_;
  FieldPath target_;
  Algorithm algo_;
};

}  // namespace

TransformFactory hash_transform() {
  return {"hash", "Hex fingerprint of fields into target (default _hash): algorithm sha256 (default), xxhash64 or xxh3",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto fields = o.fields("fields");
            auto target = o.field("target");
            std::string a = o.choice("algorithm");
            Algorithm algo = a == "sha256" ? Algorithm::sha256 : a == "xxh3" ? Algorithm::xxh3 : Algorithm::xxhash64;
            return std::make_unique<Hash>(std::move(fields), std::move(target), algo);
          },
          {
              Option("fields", OptionType::string_list, "the fields hashed, in order").mandatory(),
              Option("target", OptionType::string, "where the hex digest goes").def("_hash"),
              Option("algorithm", OptionType::string, "xxhash64 and xxh3 are much faster, but not for security")
                  .one_of({"sha256", "xxhash64", "xxh3"})
                  .def("sha256"),
          }};
}

}  // namespace bf

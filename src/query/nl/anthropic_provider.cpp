// The Anthropic Messages API: POST {endpoint}/v1/messages with x-api-key and
// anthropic-version: 2023-06-01; the system prompt is a top-level field and the
// answer is the concatenated text blocks of content[].
#include <boost/json.hpp>

#include "query/nl/provider.h"

namespace bf::nl {
namespace {

class AnthropicProvider final : public Provider {
 public:
  explicit AnthropicProvider(AiConfig config) : config_(std::move(config)) {}

  std::string describe() const override {
    return "anthropic (" + config_.endpoint + ", model " + config_.model + ")";
  }
  const AiConfig& config() const override { return config_; }

  std::string complete(const ChatRequest& request) override {
    boost::json::array messages;
    for (const auto& m : request.messages) messages.push_back(boost::json::object{{"role", m.role}, {"content", m.content}});
    boost::json::object body{{"model", config_.model},
                             {"max_tokens", config_.max_tokens},
                             {"temperature", 0},
                             {"messages", std::move(messages)}};
    if (!request.system.empty()) body["system"] = request.system;
    std::vector<std::pair<std::string, std::string>> headers{{"anthropic-version", "2023-06-01"}};
    if (!config_.api_key.empty()) headers.emplace_back("x-api-key", config_.api_key);
    const std::string who = describe();
    const std::string reply =
        detail::post_json(config_, who, config_.endpoint + "/v1/messages", headers, boost::json::serialize(body));
    boost::system::error_code ec;
    auto doc = boost::json::parse(reply, ec);
    if (ec || !doc.is_object()) throw ProviderError(502, "the AI provider " + who + " sent a response that is not JSON");
    auto* content = doc.get_object().if_contains("content");
    if (!content || !content->is_array())
      throw ProviderError(502, "the AI provider " + who + " sent a response without a content array");
    std::string text;
    for (const auto& block : content->get_array()) {
      if (!block.is_object()) continue;
      const auto& b = block.get_object();
      auto* type = b.if_contains("type");
      auto* t = b.if_contains("text");
      if (type && type->is_string() && type->get_string() == "text" && t && t->is_string()) text += t->get_string();
    }
    return text;
  }

 private:
  AiConfig config_;
};

}  // namespace

std::unique_ptr<Provider> make_anthropic_provider(const AiConfig& config) {
  return std::make_unique<AnthropicProvider>(config);
}

}  // namespace bf::nl

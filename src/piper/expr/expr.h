#pragma once
// The condition language of pipeline steps (`if:`) and computed values (`set: {expr: …}`).
// Compiled once into a tree; evaluating it on an event never re-parses. Syntax and
// functions: docs/pipelines.md, "Expressions".
//
// Evaluation never throws: a function given a value it cannot use returns null, a
// missing field reads as null, and comparisons of unrelated types are false.
#include <boost/json/value.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/batch.h"
#include "piper/transform.h"

namespace bf {

// A compile error; what() reads "line L, column C: message".
struct ExprError : PipelineError {
  ExprError(int line, int column, const std::string& message);
  int line, column;
};

// An evaluated operand: a reference into the event (or into the compiled tree's
// literals) when no new value had to be made, else an owned value.
class ExprValue {
 public:
  const boost::json::value& get() const { return ref_ ? *ref_ : owned_; }
  void refer(const boost::json::value* v) { ref_ = v; }
  void set(boost::json::value v) {
    ref_ = nullptr;
    owned_ = std::move(v);
  }
  boost::json::value take() { return ref_ ? *ref_ : std::move(owned_); }

 private:
  const boost::json::value* ref_ = nullptr;
  boost::json::value owned_;
};

namespace expr {
class Node;
constexpr int kMaxDepth = 64;           // nesting of parentheses, operators and calls
constexpr size_t kMaxSourceBytes = 65536;
}  // namespace expr

class Expr {
 public:
  static Expr compile(std::string_view source);  // throws ExprError
  void eval(const Event& event, ExprValue& out) const;
  boost::json::value value(const Event& event) const;
  bool test(const Event& event) const;  // the value's truthiness
  const std::string& source() const { return source_; }

 private:
  std::shared_ptr<const expr::Node> root_;
  std::string source_;
};

// null, false, 0, "" and empty arrays/objects are false; everything else is true.
bool truthy(const boost::json::value& v);

// The conversions of to_int() and to_float() (also used by the coerce step): numbers,
// booleans (0/1) and numeric text (surrounding blanks allowed; to_int truncates "2.5").
std::optional<int64_t> value_to_int(const boost::json::value& v);
std::optional<double> value_to_float(const boost::json::value& v);

}  // namespace bf

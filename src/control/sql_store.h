#pragma once
// The one ControlStore over SQL (sql_store.cpp) and the driver each database gives
// it (sqlite_store.cpp, postgres_store.cpp). The store's statements are the same on
// both: standard SQL with `?` placeholders; a driver runs them, owns the
// connection, the transactions and its own dialect's migrations. Included only by
// the store's .cpp files.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/store.h"

namespace bf::control {

// A bound value: text, integer, boolean, or NULL (an empty scope column).
struct SqlValue {
  enum Kind { text, integer, boolean, null } kind;
  std::string s;
  int64_t i = 0;
  SqlValue(const std::string& v) : kind(text), s(v) {}
  SqlValue(const char* v) : kind(text), s(v) {}
  SqlValue(int64_t v) : kind(integer), i(v) {}
  SqlValue(bool v) : kind(boolean), i(v ? 1 : 0) {}
  static SqlValue or_null(const std::string& v) {
    SqlValue x(v);
    if (v.empty()) x.kind = null;
    return x;
  }
};

class SqlRow {
 public:
  virtual ~SqlRow() = default;
  virtual std::string str(int col) const = 0;
  virtual int64_t num(int col) const = 0;  // NULL: 0
  virtual bool flag(int col) const = 0;
};

// One connection; the store calls it under its own lock, one thread at a time.
class SqlDriver {
 public:
  virtual ~SqlDriver() = default;
  virtual std::string describe() const = 0;
  virtual int schema_version() = 0;
  // Runs one statement (`?` placeholders), calling on_row for each row; returns the
  // rows it changed. Throws StoreConflict on integrity violations, StoreError else.
  virtual int64_t query(const std::string& sql, const std::vector<SqlValue>& args,
                        const std::function<void(const SqlRow&)>& on_row) = 0;
  // A write transaction (the write lock taken up front where the database has one).
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
};

std::unique_ptr<ControlStore> make_sql_store(std::unique_ptr<SqlDriver> driver);

}  // namespace bf::control

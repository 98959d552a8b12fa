#pragma once
// The error a pipeline (JSON text of a list of steps) fails to compile with, as a
// dataset "a/t/d" would report it; "" when it compiles.
#include <string>

#include <boost/json/parse.hpp>

#include "piper/transform.h"

namespace bf::test {

inline std::string compile_error(const std::string& steps) {
  try {
    Pipeline::compile(boost::json::parse(steps).as_array(), "dataset a/t/d");
  } catch (const PipelineError& e) {
    return e.what();
  }
  return "";
}

}  // namespace bf::test

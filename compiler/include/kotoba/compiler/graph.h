// Workflow diagrams: `kotobac graph` draws a checked workflow as a Graphviz dot or Mermaid
// flowchart, with forks and joins for parallels, diamonds for decisions, back edges for
// loops, and dashed edges to the compensations a saga may run.
#pragma once

#include "kotoba/compiler/model.h"

#include <string>

namespace kotoba::compiler {

enum class GraphFormat { Dot, Mermaid };

[[nodiscard]] std::string drawWorkflow(const Workflow &workflow, GraphFormat format);

} // namespace kotoba::compiler

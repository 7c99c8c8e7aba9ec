// Drawing workflows (see graph.h). The strategy tree is first laid out as an abstract graph
// (nodes with a shape and a label, edges with an optional label and style); each format then
// only prints that graph.
#include "kotoba/compiler/graph.h"

#include <fmt/format.h>

namespace kotoba::compiler {

namespace {

enum class Shape { Start, End, Box, Diamond, Fork, Wait, Compensation, Fail };
enum class EdgeStyle { Solid, Dashed, Back };

struct GraphNode {
  Shape shape;
  std::string label;
};

struct GraphEdge {
  size_t from;
  size_t to;
  std::string label;
  EdgeStyle style = EdgeStyle::Solid;
};

class Layout {
public:
  size_t add(Shape shape, std::string label) {
    nodes.push_back(GraphNode{shape, std::move(label)});
    return nodes.size() - 1;
  }
  void connect(size_t from, size_t to, std::string label = {}, EdgeStyle style = EdgeStyle::Solid) {
    edges.push_back(GraphEdge{from, to, std::move(label), style});
  }

  // Lays out `step` after node `from`; returns the node the flow leaves it by.
  size_t strategy(const Strategy *step, size_t from, std::string edgeLabel = {});

  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;

private:
  size_t fork(size_t from, std::string edgeLabel, std::string title,
              const std::vector<const Strategy *> &branches, std::string joinLabel);
};

std::string conditionLabel(const DecisionCase &decisionCase, size_t index) {
  if (!decisionCase.predicate.empty()) {
    return decisionCase.predicate;
  }
  return fmt::format("case {}", index + 1);
}

std::string waitLabel(const Strategy &step) {
  switch (step.waitKind) {
  case WaitKind::Timer:
    return step.until != nullptr ? "wait until a time" : "wait timer";
  case WaitKind::Signal:
    return "wait signal " + step.signalName;
  case WaitKind::Event:
    return "wait event " + step.eventType;
  }
  return "wait";
}

size_t Layout::fork(size_t from, std::string edgeLabel, std::string title,
                    const std::vector<const Strategy *> &branches, std::string joinLabel) {
  size_t split = add(Shape::Fork, std::move(title));
  connect(from, split, std::move(edgeLabel));
  size_t join = add(Shape::Fork, std::move(joinLabel));
  for (const Strategy *branch : branches) {
    connect(strategy(branch, split), join);
  }
  if (branches.empty()) {
    connect(split, join);
  }
  return join;
}

size_t Layout::strategy(const Strategy *step, size_t from, std::string edgeLabel) {
  if (step == nullptr) {
    return from;
  }
  switch (step->op) {
  case StrategyOp::Activity: {
    size_t node = add(Shape::Box, step->activityRef);
    connect(from, node, std::move(edgeLabel));
    if (step->compensate != nullptr) {
      std::string label = step->compensate->activityRef.empty()
                              ? std::string("compensation")
                              : "undo: " + step->compensate->activityRef;
      size_t undo = add(Shape::Compensation, std::move(label));
      connect(node, undo, "on saga failure", EdgeStyle::Dashed);
    }
    return node;
  }
  case StrategyOp::Seq: {
    size_t last = from;
    bool first = true;
    for (const Strategy *child : step->children) {
      last = strategy(child, last, first ? edgeLabel : std::string());
      first = false;
    }
    return last;
  }
  case StrategyOp::Parallel: {
    static const char *const modes[] = {"all", "any", "at least", "all settled"};
    std::string title = fmt::format("parallel ({})", modes[static_cast<int>(step->completion)]);
    std::vector<const Strategy *> branches(step->children.begin(), step->children.end());
    return fork(from, std::move(edgeLabel), std::move(title), branches, "join");
  }
  case StrategyOp::Decision: {
    size_t choice = add(Shape::Diamond, step->name.empty() ? "decision" : step->name);
    connect(from, choice, std::move(edgeLabel));
    size_t merge = add(Shape::Fork, "");
    for (size_t i = 0; i < step->cases.size(); ++i) {
      connect(strategy(step->cases[i].branch, choice, conditionLabel(step->cases[i], i)), merge);
    }
    if (step->defaultBranch != nullptr) {
      connect(strategy(step->defaultBranch, choice, "default"), merge);
    } else {
      size_t failure = add(Shape::Fail, "NoBranchMatched");
      connect(choice, failure, "no match");
    }
    return merge;
  }
  case StrategyOp::Wait: {
    size_t node = add(Shape::Wait, waitLabel(*step));
    connect(from, node, std::move(edgeLabel));
    return node;
  }
  case StrategyOp::Saga: {
    size_t start = add(Shape::Fork, "saga");
    connect(from, start, std::move(edgeLabel));
    size_t end = strategy(step->mainFlow, start);
    if (step->compensation != nullptr) {
      // The saga's own compensation hangs off the saga: it runs only when main_flow fails.
      strategy(step->compensation, start, "on failure");
      edges.back().style = EdgeStyle::Dashed;
    }
    return end;
  }
  case StrategyOp::SubWorkflow: {
    size_t node = add(Shape::Box, "workflow " + step->workflowRef);
    connect(from, node, std::move(edgeLabel));
    return node;
  }
  case StrategyOp::Set: {
    std::string names;
    for (const Binding &binding : step->vars) {
      names += (names.empty() ? "" : ", ") + binding.name;
    }
    size_t node = add(Shape::Box, "set " + names);
    connect(from, node, std::move(edgeLabel));
    return node;
  }
  case StrategyOp::Foreach: {
    size_t head = add(Shape::Fork, "for each " + step->itemName);
    connect(from, head, std::move(edgeLabel));
    size_t body = strategy(step->body, head);
    connect(body, head, "next", EdgeStyle::Back);
    return head;
  }
  case StrategyOp::Loop: {
    size_t head = add(Shape::Diamond, "while");
    connect(from, head, std::move(edgeLabel));
    size_t body = strategy(step->body, head, "true");
    connect(body, head, "", EdgeStyle::Back);
    return head;
  }
  case StrategyOp::Try: {
    size_t start = add(Shape::Fork, "try");
    connect(from, start, std::move(edgeLabel));
    size_t end = strategy(step->body, start);
    size_t after = add(Shape::Fork, "");
    connect(end, after);
    for (const CatchClause &clause : step->catches) {
      std::string types;
      for (const std::string &type : clause.errors) {
        types += (types.empty() ? "" : ", ") + type;
      }
      size_t handler = strategy(clause.handler, start, "catch " + types);
      edges.back().style = EdgeStyle::Dashed;
      connect(handler, after);
    }
    return step->finally != nullptr ? strategy(step->finally, after, "finally") : after;
  }
  case StrategyOp::Fail: {
    size_t node = add(Shape::Fail, "fail " + step->errorType);
    connect(from, node, std::move(edgeLabel));
    return node;
  }
  case StrategyOp::ContinueAsNew: {
    size_t node = add(Shape::End, "continue as new");
    connect(from, node, std::move(edgeLabel));
    return node;
  }
  }
  return from;
}

std::string quoted(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string printDot(const Workflow &workflow, const Layout &layout) {
  std::string out = fmt::format(
      "digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n", quoted(workflow.id));
  for (size_t i = 0; i < layout.nodes.size(); ++i) {
    const GraphNode &node = layout.nodes[i];
    const char *shape = "box";
    std::string extra;
    switch (node.shape) {
    case Shape::Start:
    case Shape::End:
      shape = "oval";
      break;
    case Shape::Box:
      shape = "box";
      extra = ", style=rounded";
      break;
    case Shape::Diamond:
      shape = "diamond";
      break;
    case Shape::Fork:
      shape = node.label.empty() ? "point" : "box";
      extra = node.label.empty() ? "" : ", style=filled, fillcolor=lightgrey";
      break;
    case Shape::Wait:
      shape = "ellipse";
      break;
    case Shape::Compensation:
      shape = "box";
      extra = ", style=dashed";
      break;
    case Shape::Fail:
      shape = "octagon";
      break;
    }
    out += fmt::format("  n{} [shape={}, label=\"{}\"{}];\n", i, shape, quoted(node.label), extra);
  }
  for (const GraphEdge &edge : layout.edges) {
    std::string attributes;
    if (!edge.label.empty()) {
      attributes += fmt::format("label=\"{}\"", quoted(edge.label));
    }
    if (edge.style != EdgeStyle::Solid) {
      attributes += std::string(attributes.empty() ? "" : ", ") +
                    (edge.style == EdgeStyle::Dashed ? "style=dashed" : "constraint=false");
    }
    out += fmt::format("  n{} -> n{}{};\n", edge.from, edge.to,
                       attributes.empty() ? "" : " [" + attributes + "]");
  }
  return out + "}\n";
}

std::string mermaidText(std::string_view text) {
  std::string out;
  for (char c : text) {
    out += c == '"' ? std::string("#quot;") : std::string(1, c);
  }
  return out;
}

std::string printMermaid(const Layout &layout) {
  std::string out = "flowchart TD\n";
  for (size_t i = 0; i < layout.nodes.size(); ++i) {
    const GraphNode &node = layout.nodes[i];
    std::string label = mermaidText(node.label.empty() ? " " : node.label);
    switch (node.shape) {
    case Shape::Start:
    case Shape::End:
      out += fmt::format("  n{}([\"{}\"])\n", i, label);
      break;
    case Shape::Box:
    case Shape::Compensation:
      out += fmt::format("  n{}[\"{}\"]\n", i, label);
      break;
    case Shape::Diamond:
      out += fmt::format("  n{}{{\"{}\"}}\n", i, label);
      break;
    case Shape::Fork:
      out += fmt::format("  n{}[[\"{}\"]]\n", i, label);
      break;
    case Shape::Wait:
      out += fmt::format("  n{}([\"{}\"])\n", i, label);
      break;
    case Shape::Fail:
      out += fmt::format("  n{}{{{{\"{}\"}}}}\n", i, label);
      break;
    }
  }
  for (const GraphEdge &edge : layout.edges) {
    const char *arrow = edge.style == EdgeStyle::Solid ? "-->" : "-.->";
    if (edge.label.empty()) {
      out += fmt::format("  n{} {} n{}\n", edge.from, arrow, edge.to);
    } else {
      out +=
          fmt::format("  n{} {}|\"{}\"| n{}\n", edge.from, arrow, mermaidText(edge.label), edge.to);
    }
  }
  return out;
}

} // namespace

std::string drawWorkflow(const Workflow &workflow, GraphFormat format) {
  Layout layout;
  size_t start = layout.add(Shape::Start, "start " + workflow.id);
  size_t last = layout.strategy(workflow.strategy, start);
  size_t end = layout.add(Shape::End, "end");
  layout.connect(last, end);
  return format == GraphFormat::Dot ? printDot(workflow, layout) : printMermaid(layout);
}

} // namespace kotoba::compiler

import AgentProtocol
// The in-guest agent: being built (issue 3).
print("codebench-agent protocol v\(agentProtocolVersion)")

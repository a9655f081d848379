import Foundation
import Testing

extension KubernetesManifestTests {
  /// deploy/k8s/overlays/jobset and overlays/kueue render, pass deploy/k8s/validate.py
  /// (JobSets strictly against the kubeflow_trainer_api models, the rest with
  /// kubernetes-validate), have the intended shape, and a misspelled or mistyped field fails.
  @Suite(.enabled(if: projectPython() != nil, "needs .venv (deploy/python-env.sh)"))
  struct JobSetOverlays {
    static let validator = repositoryRoot.appendingPathComponent("deploy/k8s/validate.py").path

    /// `kubectl kustomize` of `overlay` under `k8s` (the repository's deploy/k8s by default).
    func render(
      _ overlay: String, in k8s: URL = repositoryRoot.appendingPathComponent("deploy/k8s")
    )
      throws -> URL
    {
      let rendered = try runTool(
        try #require(tool("kubectl")), ["kustomize", k8s.appendingPathComponent(overlay).path])
      try #require(rendered.status == 0, "\(rendered.output)")
      let file = FileManager.default.temporaryDirectory.appendingPathComponent(
        "pstrain-\(UUID().uuidString).yaml")
      try rendered.output.write(to: file, atomically: true, encoding: .utf8)
      return file
    }

    /// validate.py on the rendered `file`: its status and output.
    func validate(_ file: URL) throws -> (status: Int32, output: String) {
      try runTool(try #require(projectPython()), [Self.validator, file.path])
    }

    /// The rendered documents of `overlay`, read with PyYAML (Swift has no YAML reader here).
    func documents(_ overlay: String) throws -> [[String: Any]] {
      let file = try render(overlay)
      defer { try? FileManager.default.removeItem(at: file) }
      let json = try runTool(
        try #require(projectPython()),
        [
          "-c",
          "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
          file.path,
        ])
      try #require(json.status == 0, "\(json.output)")
      return try #require(
        try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
    }

    /// The one document of `kind` among `documents`.
    func only(_ kind: String, in documents: [[String: Any]]) throws -> [String: Any] {
      let found = documents.filter { $0["kind"] as? String == kind }
      try #require(found.count == 1, "\(found.count) documents of kind \(kind)")
      return found[0]
    }

    @Test(arguments: ["jobset", "kueue"])
    func rendersAndValidates(overlay: String) throws {
      let file = try render("overlays/\(overlay)")
      defer { try? FileManager.default.removeItem(at: file) }
      let validated = try validate(file)
      #expect(validated.status == 0, "\(validated.output)")
      #expect(validated.output.contains("valid: 1 JobSet(s)"), "\(validated.output)")
    }

    @Test func jobSetStartsInOrderAndEndsWithTheWorkers() throws {
      let documents = try documents("overlays/jobset")
      let jobSet = try only("JobSet", in: documents)
      #expect(jobSet["apiVersion"] as? String == "jobset.x-k8s.io/v1alpha2")
      let spec = try #require(jobSet["spec"] as? [String: Any])
      let jobs = try #require(spec["replicatedJobs"] as? [[String: Any]])
      #expect(jobs.map { $0["name"] as? String } == ["server", "coordinator", "workers"])
      // server first; the coordinator once the server is ready; the workers once the coordinator is.
      let dependencies = jobs.map { job in
        (job["dependsOn"] as? [[String: String]])?.map {
          "\($0["name"] ?? "") \($0["status"] ?? "")"
        }
      }
      #expect(dependencies == [nil, ["server Ready"], ["coordinator Ready"]])
      #expect(spec["startupPolicy"] == nil, "dependsOn and startupPolicy are mutually exclusive")
      let success = try #require(spec["successPolicy"] as? [String: Any])
      #expect(success["operator"] as? String == "All")
      #expect(success["targetReplicatedJobs"] as? [String] == ["workers"])
      let failure = try #require(spec["failurePolicy"] as? [String: Any])
      #expect((failure["maxRestarts"] as? Int ?? 0) > 0)
      let rules = try #require(failure["rules"] as? [[String: Any]])
      #expect(rules.allSatisfy { $0["action"] as? String == "FailJobSet" })

      // The server's stable name is the one the settings give the other roles.
      let network = try #require(spec["network"] as? [String: Any])
      #expect(network["enableDNSHostnames"] as? Bool == true)
      let subdomain = try #require(network["subdomain"] as? String)
      let name = try #require((jobSet["metadata"] as? [String: Any])?["name"] as? String)
      let settings = try only("ConfigMap", in: documents)
      let data = try #require(settings["data"] as? [String: String])
      #expect(data["PSTRAIN_SERVER"] == "tcp://\(name)-server-0-0.\(subdomain):5555")
      let settingsName = (settings["metadata"] as? [String: Any])?["name"] as? String

      for job in jobs {
        let role = job["name"] as? String ?? "?"
        let jobSpec = try #require((job["template"] as? [String: Any])?["spec"] as? [String: Any])
        let pod = try #require((jobSpec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let arguments = container["args"] as? [String] ?? []
        #expect(arguments.contains("--metrics=0.0.0.0:9100"), "\(role)")
        let readiness =
          (container["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        let liveness = (container["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        #expect(readiness?["path"] as? String == "/readyz", "\(role)")
        #expect(liveness?["path"] as? String == "/healthz", "\(role)")
        // kustomize renamed the generated ConfigMap; the JobSet's references follow it.
        let reference = (container["envFrom"] as? [[String: Any]])?.first?["configMapRef"]
        #expect((reference as? [String: Any])?["name"] as? String == settingsName, "\(role)")
        let secrets = (pod["volumes"] as? [[String: Any]] ?? []).compactMap {
          ($0["secret"] as? [String: Any])?["secretName"] as? String
        }
        #expect(!secrets.isEmpty && secrets.allSatisfy { $0 == "pstrain-curve" }, "\(role)")
        switch role {
        case "server":
          // Without --stay the server exits once the epochs are done and the workers left.
          #expect(!arguments.contains("--stay"))
          #expect(arguments.contains("--epochs=$(PSTRAIN_EPOCHS)"))
        case "workers":
          #expect(jobSpec["completionMode"] as? String == "Indexed")
          #expect(jobSpec["completions"] as? Int == jobSpec["parallelism"] as? Int)
          #expect(arguments.contains("--id=$(JOB_COMPLETION_INDEX)"))
        default: break
        }
      }
    }

    @Test func kueueQueuesTheSameJobSetSuspended() throws {
      var queued = try only("JobSet", in: try documents("overlays/kueue"))
      var metadata = try #require(queued["metadata"] as? [String: Any])
      var labels = try #require(metadata["labels"] as? [String: String])
      #expect(labels.removeValue(forKey: "kueue.x-k8s.io/queue-name") == "pstrain")
      var spec = try #require(queued["spec"] as? [String: Any])
      #expect(spec.removeValue(forKey: "suspend") as? Bool == true)
      // Kueue sizes its quota from the requests: every container has them.
      for job in spec["replicatedJobs"] as? [[String: Any]] ?? [] {
        let template = (job["template"] as? [String: Any])?["spec"] as? [String: Any]
        let pod = (template?["template"] as? [String: Any])?["spec"] as? [String: Any]
        let containers = pod?["containers"] as? [[String: Any]] ?? []
        #expect(!containers.isEmpty)
        for container in containers {
          let requests = (container["resources"] as? [String: Any])?["requests"] as? [String: Any]
          #expect(requests?["cpu"] != nil && requests?["memory"] != nil, "\(job["name"] ?? "?")")
        }
      }
      // Apart from the label and suspend, it is the JobSet overlay's JobSet.
      metadata["labels"] = labels
      queued["metadata"] = metadata
      queued["spec"] = spec
      let plain = try only("JobSet", in: try documents("overlays/jobset"))
      #expect(NSDictionary(dictionary: queued).isEqual(to: plain))
    }

    /// A copy of deploy/k8s whose overlays/jobset/jobset.yaml has `from` (its first
    /// occurrence) replaced by `to`, rendered and validated.
    func validateEdited(_ from: String, _ to: String) throws -> (status: Int32, output: String) {
      let copy = FileManager.default.temporaryDirectory.appendingPathComponent(
        "pstrain-k8s-\(UUID().uuidString)")
      defer { try? FileManager.default.removeItem(at: copy) }
      try FileManager.default.copyItem(
        at: repositoryRoot.appendingPathComponent("deploy/k8s"), to: copy)
      let manifest = copy.appendingPathComponent("overlays/jobset/jobset.yaml")
      var text = try String(contentsOf: manifest, encoding: .utf8)
      let range = try #require(text.range(of: from), "jobset.yaml has no \"\(from)\"")
      text.replaceSubrange(range, with: to)
      try text.write(to: manifest, atomically: true, encoding: .utf8)
      let file = try render("overlays/jobset", in: copy)
      defer { try? FileManager.default.removeItem(at: file) }
      return try validate(file)
    }

    @Test(arguments: [
      // A misspelled field of the JobSet itself.
      ("  replicatedJobs:", "  replicatedJob:", "spec.replicatedJob: unknown field"),
      // One deep inside the first (server) pod template: its second port, metrics.
      (
        "containerPort: 9100", "containerport: 9100",
        "spec.replicatedJobs[0].template.spec.template.spec.containers[0].ports[1].containerport: unknown field"
      ),
    ])
    func misspelledFieldFailsByItsPath(from: String, to: String, expected: String) throws {
      let validated = try validateEdited(from, to)
      #expect(validated.status == 1, "\(validated.output)")
      #expect(validated.output.contains(expected), "\(validated.output)")
    }

    @Test func mistypedFieldFailsByItsPath() throws {
      // The workers' Job (the third replicated job) with a string for an integer.
      let validated = try validateEdited("completions: 2", "completions: \"2\"")
      #expect(validated.status == 1, "\(validated.output)")
      #expect(
        validated.output.contains("spec.replicatedJobs[2].template.spec.completions: wrong type"),
        "\(validated.output)")
    }
  }
}

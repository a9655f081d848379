import TrainingMath
import WireProtocol

/// The projections of a `ParameterServer`'s state: what a checkpoint file
/// keeps and what `pstrain status` reports.
extension ParameterServer {
  /// The state to write to a checkpoint file.
  public var checkpoint: ServerCheckpoint {
    ServerCheckpoint(
      mode: configuration.mode, optimizer: optimizer,
      requiredWorkers: UInt32(configuration.requiredWorkers), staleness: configuration.staleness,
      shard: configuration.shard, model: configuration.model,
      version: version, gradientsApplied: gradientsApplied, rejected: rejected,
      parameters: parameters,
      sequences: membership.sequences.keys.sorted().map {
        .init(
          workerID: $0, sequence: membership.sequences[$0]!.highest,
          recent: membership.sequences[$0]!.below)
      },
      dataset: membership.dataset,
      work: work.map { work in
        .init(
          epochs: work.epochs, chunkRows: UInt64(work.chunkRows), epoch: work.epoch,
          nextRows: work.chunks.map { UInt64($0.next) })
      },
      keyedTable: keyed.map {
        CheckpointedKeyedTable(modelName: $0.model.wireName, table: $0.table)
      })
  }

  /// The state `pstrain status` reports.
  public var status: ServerStatus {
    ServerStatus(
      mode: configuration.mode, version: version, gradientsApplied: gradientsApplied,
      rejected: rejected, learningRate: configuration.optimizer.learningRate,
      requiredWorkers: UInt32(configuration.requiredWorkers), modelName: configuration.model.name,
      parameters: namedParameters,
      workers: membership.workers.keys.sorted().map { id in
        let worker = membership.workers[id]!
        return WorkerStatus(
          workerID: id, shard: worker.shard, pushesApplied: worker.pushesApplied,
          lastSequence: membership.sequences[id]?.highest ?? 0, lastStaleness: worker.lastStaleness)
      }, workersLeft: membership.workersLeft, auditRecordsSent: auditRecordsSent,
      epochs: work?.epochs ?? 0, epoch: work?.epoch ?? 0,
      rowsAppliedInEpoch: work?.rowsApplied ?? 0, datasetRows: membership.dataset?.rows ?? 0,
      workersDead: membership.workersDead, optimizer: optimizer.settings.description,
      currentLearningRate: optimizer.currentLearningRate, staleness: configuration.staleness,
      serverShard: configuration.shard,
      parameterOffset: UInt64(configuration.parameterRange.lowerBound),
      totalParameters: UInt64(configuration.model.layout.totalCount),
      auditsReported: auditsReported, auditsFailed: auditsFailed, lastAudit: lastAudit,
      checkpoints: checkpointHealth, resume: resume, lastEvaluation: lastEvaluation,
      quarantine: quarantine, keyedTable: keyed?.report)
  }
}

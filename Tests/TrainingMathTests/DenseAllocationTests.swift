import AllocationCounter
import Testing

@testable import TrainingMath

/// A training step of a dense network allocates nothing once its workspace exists.
@Suite struct DenseAllocationTests {
  @Test(arguments: ElementType.allCases)
  func stepsAllocateNothing(elementType: ElementType) {
    let fixture = DenseFixture(
      hidden: [16, 8], activation: .relu, loss: .crossEntropy, elementType: elementType,
      batch: 8, capacity: 8)
    let network = fixture.network
    let workspace = fixture.workspace
    let loss = SoftmaxCrossEntropyLoss()
    var gradient = [Double](repeating: 0, count: network.parameterCount)
    var total = 0.0
    func step(batch: Int) {
      workspace.batchSize = batch
      network.forward(weights: fixture.weights, workspace: workspace)
      loss.accumulate(workspace: workspace, into: &total, writeGradient: true)
      network.backward(weights: fixture.weights, workspace: workspace, gradient: &gradient)
    }
    step(batch: 8)
    step(batch: 5)
    let before = pstrain_thread_allocations()
    for round in 0..<20 { step(batch: round % 2 == 0 ? 8 : 5) }
    #expect(pstrain_thread_allocations() - before == 0)
  }
}

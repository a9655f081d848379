/// How every command shows an epoch count, so that `status`, `checkpoint show` and the
/// worker agree: the epoch being worked on counted from 1 ("3 of 20"), from the 0-based
/// count the server and worker keep, which equals `epochs` once all are done
/// ("20 of 20 (done)"); never "21 of 20".
func epochProgress<Count: BinaryInteger>(_ epoch: Count, of epochs: Count) -> String {
  epoch >= epochs ? "\(epochs) of \(epochs) (done)" : "\(epoch + 1) of \(epochs)"
}

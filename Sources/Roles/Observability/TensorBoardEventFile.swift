import SystemCalls
import WireProtocol

/// One run's TensorBoard event file, `LOGDIR/RUN/events.out.tfevents.SECONDS.HOST.PID.N`
/// (TensorFlow's name, with tensorboardX's pid and counter so that two processes
/// or files never collide), written by pstrain itself: TFRecords of protobuf
/// `Event`s (`WireProtocol`'s `TensorBoardEvent`), the first of them the file
/// version. Each `write` is one `write` to the kernel, so a live TensorBoard sees
/// it at once. A failure to write (a full disk) is reported once through `warn`
/// and ends the file's writing, never the training.
public final class TensorBoardEventFile {
  /// The event file's path.
  public let path: String
  /// Events written so far, the file version included.
  public private(set) var eventsWritten = 0
  private var file: AppendOnlyFile?
  private let warn: (String) -> Void

  /// Creates the directory `logDirectory/run` (and its parents) and a new event
  /// file in it, and writes the file version. Throws, before any training, when
  /// the directory cannot be made or written ("cannot create DIR: Permission
  /// denied (errno 13)"); `warn` hears a later write failure, once.
  public init(logDirectory: String, run: String, warn: @escaping (String) -> Void)
    throws(SystemCallError)
  {
    let directory = logDirectory + "/" + run
    try FileIO.makeDirectories(directory)
    let now = WallClock.seconds()
    let seconds = String(Int64(now))
    let stem =
      directory + "/events.out.tfevents."
      + String(repeating: "0", count: max(0, 10 - seconds.count)) + seconds
      + ".\(ProcessControl.hostName).\(ProcessControl.id)."
    var counter = 0
    while true {
      do {
        file = try AppendOnlyFile(creating: stem + "\(counter)")
        break
      } catch  where error.isFileExists && counter < 1000 {
        counter += 1
      }
    }
    path = stem + "\(counter)"
    self.warn = warn
    try file?.append(
      TensorBoardEvent(wallTime: now, step: 0, content: .fileVersion(TensorBoardEvent.fileVersion))
        .record)
    eventsWritten = 1
  }

  deinit { file?.close() }

  /// Makes `logDirectory` (and its parents) and checks that a file can be
  /// created in it, for a command that only passes the directory on to the
  /// roles it starts: throws what `init` would, before they start.
  public static func checkWritable(logDirectory: String) throws(SystemCallError) {
    try FileIO.makeDirectories(logDirectory)
    let probe = logDirectory + "/.pstrain-write-check-\(ProcessControl.id)"
    try AppendOnlyFile(creating: probe).close()
    try FileIO.remove(probe)
  }

  /// Appends one event of `scalars` at `step` (the server's version), stamped
  /// with the wall clock; nothing when `scalars` is empty or writing has failed.
  public func write(step: UInt64, _ scalars: [TensorBoardEvent.Scalar]) {
    guard let file, !scalars.isEmpty else { return }
    let event = TensorBoardEvent(
      wallTime: WallClock.seconds(), step: Int64(clamping: step), content: .scalars(scalars))
    do {
      try file.append(event.record)
      eventsWritten += 1
    } catch {
      warn("tensorboard: \(error); no more scalars are written to \(path), training goes on")
      close()
    }
  }

  /// Closes the file (on stop); later writes do nothing.
  public func close() {
    file?.close()
    file = nil
  }
}

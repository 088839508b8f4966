//! `/usr/libexec/jitsudo/jitsudo-net`: the network half of `jitsudo --request` and
//! `jitsudo --sync`. Not setuid; the setuid jitsudo runs it as the invoking user (or
//! `nobody`) with an empty environment, one task as JSON on standard input, and reads
//! its answers, one JSON object a line, from standard output. See `jitsudo_core::helper`.

use std::io::Read;
use std::process::ExitCode;

use jitsudo_core::helper::{ChildMsg, Task, MAX_TASK_BYTES};
use jitsudo_net::exchange;

fn main() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut input = Vec::new();
    let task = std::io::stdin()
        .lock()
        .take(MAX_TASK_BYTES)
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read the task: {e}"))
        .and_then(|_| {
            serde_json::from_slice::<Task>(&input)
                .map_err(|e| format!("the task is not one this helper knows: {e}"))
        });
    let code = match task {
        Ok(task) => exchange::run(task, &mut out),
        Err(message) => {
            exchange::send(&mut out, &ChildMsg::Failed { message });
            2
        }
    };
    ExitCode::from(code)
}

//! Step order: flow files may list steps in any order; the database needs
//! every step after its dependencies (`step_index` is topological and
//! `add_step` refuses a dependency that does not exist yet). This module
//! sorts, and names a cycle with its path when there is no order.

use std::collections::HashMap;

use crate::error::FlowError;

/// A topological order of `steps` (each given as its slug and dependency
/// slugs, every dependency known), as indices into `steps`.
///
/// Stable: among the steps that are ready, the one listed first comes
/// first, so a list already in dependency order is returned unchanged (its
/// stored shape, compared by position, stays the same).
pub fn topological_order(steps: &[(&str, &[String])]) -> Result<Vec<usize>, FlowError> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, (slug, _))| (*slug, i))
        .collect();
    let mut placed = vec![false; steps.len()];
    let mut order = Vec::with_capacity(steps.len());
    // O(n²) in the worst case; flows have tens of steps, and the simple scan
    // is what keeps the order stable.
    while order.len() < steps.len() {
        let next = (0..steps.len()).find(|&i| {
            !placed[i]
                && steps[i]
                    .1
                    .iter()
                    .all(|dep| index.get(dep.as_str()).is_some_and(|&d| placed[d]))
        });
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                return Err(FlowError::Cycle {
                    path: find_cycle(steps, &index, &placed),
                })
            }
        }
    }
    Ok(order)
}

/// A cycle among the unplaced steps, as slugs in dependency order (each
/// step depends on the one before it), the first repeated at the end.
/// Every unplaced step waits on another unplaced one, so following any
/// unplaced dependency from any unplaced step must loop.
fn find_cycle(
    steps: &[(&str, &[String])],
    index: &HashMap<&str, usize>,
    placed: &[bool],
) -> Vec<String> {
    let start = (0..steps.len())
        .find(|&i| !placed[i])
        .expect("a step is left");
    let mut walk: Vec<usize> = vec![start];
    loop {
        let current = *walk.last().expect("walk is never empty");
        let waiting_on = steps[current]
            .1
            .iter()
            .filter_map(|dep| index.get(dep.as_str()).copied())
            .find(|&d| !placed[d])
            .expect("an unplaced step waits on an unplaced dependency");
        if let Some(pos) = walk.iter().position(|&s| s == waiting_on) {
            // walk[pos..] is the loop, each step depending on the next;
            // reverse it so each depends on the one before, and start it at
            // the step listed first, so the message does not depend on
            // where the search began.
            let mut cycle: Vec<usize> = walk[pos..].iter().rev().copied().collect();
            let first = (0..cycle.len())
                .min_by_key(|&k| cycle[k])
                .expect("a cycle has a step");
            cycle.rotate_left(first);
            cycle.push(cycle[0]);
            return cycle.into_iter().map(|i| steps[i].0.to_string()).collect();
        }
        walk.push(waiting_on);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(steps: &[(&str, &[&str])]) -> Result<Vec<String>, FlowError> {
        let owned: Vec<(&str, Vec<String>)> = steps
            .iter()
            .map(|(s, d)| (*s, d.iter().map(|x| x.to_string()).collect()))
            .collect();
        let refs: Vec<(&str, &[String])> = owned.iter().map(|(s, d)| (*s, d.as_slice())).collect();
        topological_order(&refs).map(|o| o.into_iter().map(|i| steps[i].0.to_string()).collect())
    }

    #[test]
    fn sorted_lists_stay_as_they_are() {
        assert_eq!(
            order(&[("a", &[]), ("c", &[]), ("b", &["a"]), ("d", &["b", "c"])]).unwrap(),
            ["a", "c", "b", "d"]
        );
    }

    #[test]
    fn any_order_is_sorted_stably() {
        assert_eq!(
            order(&[("d", &["b", "c"]), ("b", &["a"]), ("c", &[]), ("a", &[])]).unwrap(),
            ["c", "a", "b", "d"]
        );
    }

    #[test]
    fn cycles_are_named_with_their_path() {
        let path = |e: FlowError| match e {
            FlowError::Cycle { path } => path,
            other => panic!("{other}"),
        };
        assert_eq!(path(order(&[("a", &["a"])]).unwrap_err()), ["a", "a"]);
        // a depends on c, b on a, c on b: a → b → c → a.
        assert_eq!(
            path(
                order(&[
                    ("root", &[]),
                    ("a", &["c", "root"]),
                    ("b", &["a"]),
                    ("c", &["b"])
                ])
                .unwrap_err()
            ),
            ["a", "b", "c", "a"]
        );
        // A step downstream of a cycle is not part of its path.
        assert_eq!(
            path(order(&[("x", &["a"]), ("a", &["b"]), ("b", &["a"])]).unwrap_err()),
            ["a", "b", "a"]
        );
    }
}

//! One sort for nanotype's crates (the schema's and the runtime's). The standard library's
//! sort is several KiB of wasm for every element type and comparator it is used with (about 4.5 KiB each, measured in the example
//! Worker, where 18 of them came to 81 KiB); sorting a list of positions with a comparator
//! behind `dyn` instantiates it once, and the lists sorted here are short.

use std::cmp::Ordering;

/// Sort `v` by `cmp`, stably (as [`slice::sort_by`]).
pub fn sort_by<T>(v: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    {
        let items: &[T] = v;
        sort_positions(&mut order, &mut |a, b| cmp(&items[*a], &items[*b]));
    }
    let mut items: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(order.into_iter().filter_map(|i| items[i].take()));
}

/// Sort `v` by the key `f` gives each element, stably (as [`slice::sort_by_key`]).
pub fn sort_by_key<T, K: Ord>(v: &mut Vec<T>, mut f: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| f(a).cmp(&f(b)));
}

/// Sort `v` in its order, stably (as [`slice::sort`]).
pub fn sort<T: Ord>(v: &mut Vec<T>) {
    sort_by(v, T::cmp);
}

#[inline(never)]
fn sort_positions(order: &mut [usize], cmp: &mut dyn FnMut(&usize, &usize) -> Ordering) {
    order.sort_by(|a, b| cmp(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_as_the_standard_sort() {
        let mut seed = 0x2545_f491_u64;
        for len in [0, 1, 2, 3, 7, 20, 33, 200] {
            let v: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 5) as u8, i)
                })
                .collect();
            let mut ours = v.clone();
            sort_by_key(&mut ours, |p| p.0);
            let mut std = v.clone();
            std.sort_by_key(|p| p.0);
            assert_eq!(ours, std, "length {len}");
            let mut ours = v.clone();
            sort(&mut ours);
            let mut std = v;
            std.sort_unstable();
            assert_eq!(ours, std, "length {len}");
        }
    }
}

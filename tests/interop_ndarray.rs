//! Feature `ndarray`: masked views of arrays borrow their elements in place
//! (row-major contiguous only; other layouts are errors, never silent
//! copies) and compute what the slice views compute; results go back to
//! arrays.

#![cfg(feature = "ndarray")]

use maskops::nd::NdView;
use maskops::ndarray::{s, Array2, Array4, IxDyn};
use maskops::{Error, Mask, MaskedView};

#[test]
fn views_borrow_in_place_and_agree_with_slices() {
    let a = Array2::from_shape_fn((5, 70), |(r, c)| (r * 70 + c) as f32 / 8.0 - 20.0);
    let m = Mask::from_fn(350, |i| i % 3 != 0);
    let v = MaskedView::from_array2(a.view(), &m).unwrap();
    assert_eq!(v.data().as_ptr(), a.as_ptr(), "no copy");
    let w = MaskedView::matrix(a.as_slice().unwrap(), &m, 5, 70).unwrap();
    assert_eq!(v.sum_dim(0).unwrap(), w.sum_dim(0).unwrap());
    assert_eq!(v.softmax(1).unwrap(), w.softmax(1).unwrap());
    // a block of whole rows is still contiguous: accepted, in place
    let rows = a.slice(s![2.., ..]);
    let m3 = Mask::ones(210);
    let v3 = MaskedView::from_array2(rows, &m3).unwrap();
    assert_eq!(v3.data().as_ptr(), &a[[2, 0]] as *const f32);
    assert_eq!((v3.rows(), v3.cols()), (3, 70));
    // a column slice or a transpose is not: refused
    let m2 = Mask::ones(5 * 69);
    assert!(matches!(
        MaskedView::from_array2(a.slice(s![.., 1..]), &m2).unwrap_err(),
        Error::Unsupported { .. }
    ));
    assert!(matches!(
        MaskedView::from_array1(a.column(3), &Mask::ones(5)).unwrap_err(),
        Error::Unsupported { .. }
    ));
    let row = a.row(1);
    let m70 = Mask::ones(70);
    assert_eq!(
        MaskedView::from_array1(row, &m70).unwrap().sum(),
        MaskedView::new(&a.as_slice().unwrap()[70..140], &m70)
            .unwrap()
            .sum()
    );
    // the mask length is still checked
    assert!(matches!(
        MaskedView::from_array2(a.view(), &Mask::ones(7)).unwrap_err(),
        Error::Shape { .. } | Error::Length { .. }
    ));
}

#[test]
fn nd_views_of_arrays_and_results_as_arrays() {
    let (b, h, t) = (2, 3, 5);
    let x = Array4::from_shape_fn((b, h, t, t), |(i, j, k, l)| {
        ((i * 31 + j * 7 + k * 3 + l) % 11) as f64
    });
    let pad = Mask::padding(&[5, 3], t).unwrap();
    let v = NdView::from_array(x.view(), &pad, &[b, 1, 1, t]).unwrap();
    let flat =
        NdView::broadcast(x.as_slice().unwrap(), &[b, h, t, t], &pad, &[b, 1, 1, t]).unwrap();
    for dim in 0..4 {
        assert_eq!(v.sum_dim(dim).unwrap(), flat.sum_dim(dim).unwrap());
    }
    let s = v.amax_dim(3).unwrap();
    let arr = s.to_array(&[b, h, t], f64::NAN).unwrap();
    assert_eq!(arr.shape(), &[b, h, t]);
    for (k, val) in arr.iter().enumerate() {
        assert_eq!(val.to_bits(), s.values[k].to_bits());
    }
    assert!(matches!(
        s.to_array(&[b, h, t + 1], 0.0).unwrap_err(),
        Error::Length { arg: "shape", .. }
    ));
    // fill goes under cleared bits
    let none = Mask::zeros(t);
    let e = NdView::from_array(x.view(), &none, &[t])
        .unwrap()
        .sum_dim(3)
        .unwrap();
    let z = e.to_array(&[b, h, t], -1.0).unwrap();
    assert!(z.iter().all(|&v| v == -1.0));
    assert_eq!(z.raw_dim(), IxDyn(&[b, h, t]));
    // a permuted array is refused
    let p = x.view().permuted_axes([0, 2, 1, 3]);
    assert!(matches!(
        NdView::from_array(p, &pad, &[b, 1, 1, t]).unwrap_err(),
        Error::Unsupported { .. }
    ));
}

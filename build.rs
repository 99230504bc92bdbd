//! Build script.
//!
//! * Without the `cuda` / `cuda-emulator` features: nothing.
//! * `cuda`: every `kernels/*.cu` (with `kernels/common.cuh` prepended) is
//!   compiled by NVRTC (through cudarc, loaded at build time) to PTX for
//!   `compute_70` with `--fmad=false`, written to `OUT_DIR/<name>.ptx` and
//!   embedded by `src/cuda/ptx.rs`. If libnvrtc cannot be loaded the build
//!   still succeeds: a `cargo:warning` is printed, the PTX is left empty and
//!   the runtime compiles the embedded sources with the user's NVRTC.
//! * `cuda-emulator`: the same sources are compiled for the host with
//!   `kernels/emu.cuh` by the `cc` crate into `libmaskops_emu.a`.
//!
//! `OUT_DIR/kernels.rs` lists the kernel files (name, source path, PTX path)
//! for `include_str!` in either case.

use std::path::{Path, PathBuf};

/// NVRTC options shared with the runtime fallback (src/cuda/ptx.rs keeps the
/// same list).
#[allow(dead_code)]
const NVRTC_ARCH: &str = "compute_70";

fn kernel_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cu"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let cuda = std::env::var_os("CARGO_FEATURE_CUDA").is_some();
    let emu = std::env::var_os("CARGO_FEATURE_CUDA_EMULATOR").is_some();
    if !cuda && !emu {
        return;
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let kdir = manifest.join("kernels");
    println!("cargo:rerun-if-changed={}", kdir.display());
    let files = kernel_files(&kdir);
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    for h in ["common.cuh", "emu.cuh"] {
        println!("cargo:rerun-if-changed={}", kdir.join(h).display());
    }

    // The list of kernel files, for include_str! in src/cuda/ptx.rs.
    let mut list = String::from("/// (file stem, CUDA source, PTX built by build.rs or empty)\npub const KERNEL_FILES: &[(&str, &str, &str)] = &[\n");
    for f in &files {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let ptx = out.join(format!("{stem}.ptx"));
        if !cuda {
            std::fs::write(&ptx, "").expect("write empty PTX");
        }
        list.push_str(&format!(
            "    ({stem:?}, include_str!({:?}), include_str!({:?})),\n",
            f.display().to_string(),
            ptx.display().to_string()
        ));
    }
    list.push_str("];\n");
    list.push_str(&format!(
        "/// kernels/common.cuh, prepended to every kernel file.\npub const COMMON: &str = include_str!({:?});\n",
        kdir.join("common.cuh").display().to_string()
    ));
    std::fs::write(out.join("kernels.rs"), list).expect("write kernels.rs");

    if cuda {
        // libnvrtc is found through the loader's search path.
        println!("cargo:rerun-if-env-changed=LD_LIBRARY_PATH");
    }
    #[cfg(feature = "cuda")]
    nvrtc::build(&kdir, &files, &out);
    #[cfg(feature = "cuda-emulator")]
    emulator::build(&kdir, &files, &out);
}

#[cfg(feature = "cuda")]
mod nvrtc {
    use std::path::{Path, PathBuf};

    pub fn build(kdir: &Path, files: &[PathBuf], out: &Path) {
        let common =
            std::fs::read_to_string(kdir.join("common.cuh")).expect("read kernels/common.cuh");
        // SAFETY: is_culib_present only tries to dlopen the library.
        let present = unsafe { cudarc::nvrtc::sys::is_culib_present() };
        for f in files {
            let stem = f.file_stem().unwrap().to_string_lossy().to_string();
            let ptx_path = out.join(format!("{stem}.ptx"));
            if !present {
                std::fs::write(&ptx_path, "").expect("write empty PTX");
                continue;
            }
            let src = std::fs::read_to_string(f).expect("read kernel source");
            let full = format!("{common}\n#line 1 \"{stem}.cu\"\n{src}");
            let opts = cudarc::nvrtc::CompileOptions {
                fmad: Some(false),
                ftz: Some(false),
                prec_div: Some(true),
                prec_sqrt: Some(true),
                arch: Some(super::NVRTC_ARCH),
                name: Some(format!("{stem}.cu")),
                options: vec!["--std=c++17".into()],
                ..Default::default()
            };
            match cudarc::nvrtc::compile_ptx_with_opts(&full, opts) {
                Ok(ptx) => std::fs::write(&ptx_path, ptx.to_src()).expect("write PTX"),
                Err(cudarc::nvrtc::CompileError::CompileError { log, .. }) => {
                    panic!(
                        "NVRTC failed on kernels/{stem}.cu:\n{}",
                        log.to_string_lossy()
                    )
                }
                Err(e) => panic!("NVRTC failed on kernels/{stem}.cu: {e:?}"),
            }
        }
        if !present {
            println!(
                "cargo:warning=maskops: libnvrtc not found at build time; the PTX will be compiled at run time \
                 by the user's NVRTC (install nvidia-cuda-nvrtc-cu12 or a CUDA toolkit and set LD_LIBRARY_PATH \
                 to build it now)"
            );
        }
    }
}

#[cfg(feature = "cuda-emulator")]
mod emulator {
    use std::path::{Path, PathBuf};

    pub fn build(kdir: &Path, files: &[PathBuf], out: &Path) {
        let mut unit =
            String::from("// generated by build.rs: every kernel file under the emulator\n");
        unit.push_str("#include \"common.cuh\"\n");
        for f in files {
            unit.push_str(&format!("#include {:?}\n", f.display().to_string()));
        }
        unit.push_str("MASKOPS_EMU_DEFINE_ENTRY_POINTS\n");
        let path = out.join("maskops_emu.cpp");
        std::fs::write(&path, unit).expect("write maskops_emu.cpp");
        cc::Build::new()
            .cpp(true)
            .std("c++20")
            .file(&path)
            .include(kdir)
            .opt_level(1)
            .flag("-ffp-contract=off")
            .flag("-fno-fast-math")
            .flag("-pthread")
            .flag("-Wno-unknown-pragmas")
            .warnings(true)
            .compile("maskops_emu");
        println!("cargo:rustc-link-lib=pthread");
    }
}

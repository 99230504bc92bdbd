//! Build script.
//!
//! * Without the `cuda` / `cuda-emulator` features: nothing.
//! * `cuda`: every `kernels/*.cu` (with `kernels/common.cuh` prepended) is
//!   compiled by NVRTC (through cudarc, loaded at build time) with
//!   `--fmad=false` to PTX for `compute_70` (`compute_75` on an NVRTC that
//!   dropped Volta, CUDA 13), written to `OUT_DIR/<name>.ptx`, and to a
//!   cubin for each SM architecture of `MASKOPS_CUDA_ARCHS` (default 70 75
//!   80 90; `none` for PTX only) that NVRTC supports,
//!   `OUT_DIR/<name>.sm_XX.cubin`; all embedded by `src/cuda/ptx.rs`. If
//!   libnvrtc cannot be loaded the build still succeeds: a `cargo:warning`
//!   is printed, the PTX is left empty and the runtime compiles the embedded
//!   sources with the user's NVRTC. An NVRTC that rejects an option or an
//!   architecture gives a warning, not a failed build; only an error in a
//!   kernel's source fails it.
//! * `cuda-emulator`: the same sources are compiled for the host with
//!   `kernels/emu.cuh` by the `cc` crate into `libmaskops_emu.a`.
//!
//! `OUT_DIR/kernels.rs` lists the kernel files (name, source path, PTX path)
//! for `include_str!` in either case.

use std::path::{Path, PathBuf};

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
    // `maskops_o0`: this build of maskops is unoptimized (a caller's debug
    // profile). The kernels' `#[inline(always)]` helpers are then plain
    // `#[inline]` (see `src/cpu/reduce/engine.rs`): at opt-level 0 forced
    // inlining only multiplies each kernel body by its call sites (the
    // debug binary of a caller was 82 MB), it makes nothing faster.
    println!("cargo:rustc-check-cfg=cfg(maskops_o0)");
    if std::env::var("OPT_LEVEL").as_deref() == Ok("0") {
        println!("cargo:rustc-cfg=maskops_o0");
    }
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

    if cuda {
        // libnvrtc is found through the loader's search path.
        println!("cargo:rerun-if-env-changed=LD_LIBRARY_PATH");
        println!("cargo:rerun-if-env-changed=MASKOPS_CUDA_ARCHS");
    }
    // PTX (and cubins) by NVRTC when it can be loaded; empty PTX otherwise.
    #[cfg(feature = "cuda")]
    let cubins = nvrtc::build(&kdir, &files, &out);
    #[cfg(not(feature = "cuda"))]
    let cubins: Vec<(String, u32, PathBuf)> = Vec::new();

    // The list of kernel files, for include_str! in src/cuda/ptx.rs.
    let mut list = String::from("/// (file stem, CUDA source, PTX built by build.rs or empty)\npub const KERNEL_FILES: &[(&str, &str, &str)] = &[\n");
    for f in &files {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let ptx = out.join(format!("{stem}.ptx"));
        if !ptx.exists() {
            std::fs::write(&ptx, "").expect("write empty PTX");
        }
        list.push_str(&format!(
            "    ({stem:?}, include_str!({:?}), include_str!({:?})),\n",
            f.display().to_string(),
            ptx.display().to_string()
        ));
    }
    list.push_str("];\n");
    list.push_str("/// (file stem, SM architecture as 10 * major + minor, cubin) built by build.rs\npub const CUBINS: &[(&str, u32, &[u8])] = &[\n");
    for (stem, arch, path) in &cubins {
        list.push_str(&format!(
            "    ({stem:?}, {arch}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    list.push_str("];\n");
    list.push_str(&format!(
        "/// kernels/common.cuh, prepended to every kernel file.\npub const COMMON: &str = include_str!({:?});\n",
        kdir.join("common.cuh").display().to_string()
    ));
    std::fs::write(out.join("kernels.rs"), list).expect("write kernels.rs");

    #[cfg(feature = "cuda-emulator")]
    emulator::build(&kdir, &files, &out);
}

#[cfg(feature = "cuda")]
mod nvrtc {
    use cudarc::nvrtc::{result, sys};
    use std::ffi::CString;
    use std::path::{Path, PathBuf};

    /// The SM architectures cubins are built for by default (those NVRTC
    /// supports of these): Volta, Turing, Ampere A100, Hopper. Ampere 8.6
    /// (A10, RTX 30) and Ada 8.9 (L4, L40, RTX 40) run the sm_80 cubin
    /// unchanged (SASS is compatible upwards within a major version);
    /// `MASKOPS_CUDA_ARCHS="70 75 80 86 89 90"` adds cubins tuned for them,
    /// at about 40 s of NVRTC time per architecture on a 2-core machine.
    const DEFAULT_ARCHS: &[u32] = &[70, 75, 80, 90];

    /// The architectures this NVRTC supports (`nvrtcGetSupportedArchs`).
    fn supported() -> Vec<u32> {
        let mut n: std::ffi::c_int = 0;
        // SAFETY: NVRTC is loaded (checked by the caller); `n` is a valid
        // out-pointer.
        if unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
            .result()
            .is_err()
            || n <= 0
        {
            return Vec::new();
        }
        let mut v = vec![0 as std::ffi::c_int; n as usize];
        // SAFETY: `v` holds the `n` entries NVRTC writes.
        if unsafe { sys::nvrtcGetSupportedArchs(v.as_mut_ptr()) }
            .result()
            .is_err()
        {
            return Vec::new();
        }
        v.into_iter().map(|a| a as u32).collect()
    }

    /// The NVRTC options of the crate (no FMA contraction, IEEE division and
    /// square root) for one target: `compute_XX` (PTX) or `sm_XX` (cubin).
    fn options(target: &str) -> Vec<String> {
        vec![
            "--fmad=false".into(),
            "--ftz=false".into(),
            "--prec-div=true".into(),
            "--prec-sqrt=true".into(),
            format!("--gpu-architecture={target}"),
            "--std=c++17".into(),
        ]
    }

    /// One compilation: PTX text (`compute_XX`) or a cubin (`sm_XX`).
    /// `Err((log, is_source_error))`.
    fn compile(
        src: &str,
        stem: &str,
        target: &str,
        cubin: bool,
    ) -> Result<Vec<u8>, (String, bool)> {
        let csrc = CString::new(src).expect("kernel source has no NUL");
        let name = CString::new(format!("{stem}.cu")).expect("file name has no NUL");
        let prog =
            result::create_program(&csrc, Some(&name)).map_err(|e| (format!("{e:?}"), false))?;
        // SAFETY: `prog` was just created; destroyed below on every path.
        let compiled = unsafe { result::compile_program(prog, &options(target)) };
        let out = match compiled {
            Err(e) => {
                // SAFETY: `prog` is live.
                let log = unsafe { result::get_program_log(prog) }
                    .map(|l| {
                        let b: Vec<u8> =
                            l.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
                        String::from_utf8_lossy(&b).into_owned()
                    })
                    .unwrap_or_default();
                // NVRTC_ERROR_COMPILATION: the source is wrong; anything
                // else (an option this NVRTC rejects) is not
                let source_error = e.0 == sys::nvrtcResult::NVRTC_ERROR_COMPILATION;
                Err((format!("{e:?}: {log}"), source_error))
            }
            Ok(()) if cubin => {
                let mut n = 0usize;
                let mut buf = Vec::new();
                // SAFETY: `prog` compiled; `n` and `buf` (of `n` bytes) are
                // valid out-pointers.
                let r = unsafe { sys::nvrtcGetCUBINSize(prog, &mut n) }
                    .result()
                    .and_then(|_| {
                        buf = vec![0u8; n];
                        unsafe {
                            sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut std::ffi::c_char)
                        }
                        .result()
                    });
                r.map(|_| buf).map_err(|e| (format!("{e:?}"), false))
            }
            Ok(()) => {
                // SAFETY: `prog` compiled.
                unsafe { result::get_ptx(prog) }
                    .map(|p| p.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect())
                    .map_err(|e| (format!("{e:?}"), false))
            }
        };
        // SAFETY: `prog` is live and not used after this.
        let _ = unsafe { result::destroy_program(prog) };
        out
    }

    /// Compiles every kernel file to PTX (for the oldest architecture this
    /// NVRTC supports of compute_70 / compute_75) and to a cubin for each
    /// architecture of `MASKOPS_CUDA_ARCHS` (default [`DEFAULT_ARCHS`];
    /// `none` for PTX only) this NVRTC supports, in parallel. Returns the
    /// cubins written. Without NVRTC: empty PTX, no cubins, a warning.
    pub fn build(kdir: &Path, files: &[PathBuf], out: &Path) -> Vec<(String, u32, PathBuf)> {
        // SAFETY: is_culib_present only tries to dlopen the library.
        if !unsafe { sys::is_culib_present() } {
            println!(
                "cargo:warning=maskops: libnvrtc not found at build time; the PTX will be compiled at run time \
                 by the user's NVRTC (install nvidia-cuda-nvrtc-cu12 or a CUDA toolkit and set LD_LIBRARY_PATH \
                 to build it now)"
            );
            return Vec::new();
        }
        let common =
            std::fs::read_to_string(kdir.join("common.cuh")).expect("read kernels/common.cuh");
        let sup = supported();
        let ptx_arch = [70u32, 75]
            .into_iter()
            .find(|a| sup.is_empty() || sup.contains(a))
            .unwrap_or(75);
        let wanted: Vec<u32> = match std::env::var("MASKOPS_CUDA_ARCHS") {
            Ok(v) if v.trim() == "none" => Vec::new(),
            Ok(v) if !v.trim().is_empty() => v
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.trim_start_matches("sm_")
                        .parse()
                        .expect("MASKOPS_CUDA_ARCHS: numbers like 80 or sm_80")
                })
                .collect(),
            _ => DEFAULT_ARCHS.to_vec(),
        };
        let archs: Vec<u32> = wanted.into_iter().filter(|a| sup.contains(a)).collect();
        // jobs: (file, None = PTX | Some(arch) = cubin)
        let mut jobs = Vec::new();
        for f in files {
            jobs.push((f.clone(), None));
            for &a in &archs {
                jobs.push((f.clone(), Some(a)));
            }
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(jobs.len().max(1));
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|sc| {
            for _ in 0..threads {
                sc.spawn(|| loop {
                    let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((f, arch)) = jobs.get(j) else { break };
                    let stem = f.file_stem().unwrap().to_string_lossy().to_string();
                    let src = std::fs::read_to_string(f).expect("read kernel source");
                    let full = format!("{common}\n#line 1 \"{stem}.cu\"\n{src}");
                    let (target, path) = match arch {
                        None => (
                            format!("compute_{ptx_arch}"),
                            out.join(format!("{stem}.ptx")),
                        ),
                        Some(a) => (format!("sm_{a}"), out.join(format!("{stem}.sm_{a}.cubin"))),
                    };
                    let r = compile(&full, &stem, &target, arch.is_some());
                    results.lock().unwrap().push((stem, *arch, path, r));
                });
            }
        });
        let mut cubins = Vec::new();
        for (stem, arch, path, r) in results.into_inner().unwrap() {
            match r {
                Ok(bytes) => {
                    std::fs::write(&path, &bytes).expect("write NVRTC output");
                    if let Some(a) = arch {
                        cubins.push((stem, a, path));
                    }
                }
                Err((log, true)) => panic!("NVRTC failed on kernels/{stem}.cu ({arch:?}):\n{log}"),
                Err((log, false)) => {
                    // an NVRTC that rejects an option or an architecture: a
                    // warning, and the run time falls back (PTX JIT, then
                    // its own NVRTC)
                    println!("cargo:warning=maskops: NVRTC could not build kernels/{stem}.cu for {arch:?}: {log}");
                    if arch.is_none() {
                        std::fs::write(&path, "").expect("write empty PTX");
                    }
                }
            }
        }
        cubins.sort();
        cubins
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

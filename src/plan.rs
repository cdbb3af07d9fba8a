//! Spec → Plan: everything the container's init will do, worked out in the parent before
//! clone. It changes nothing on the host. Besides the spec it reads host facts: the
//! cgroup mounts and rsrun's own cgroup (`Cgroup::resolve`), the rootfs path
//! (canonicalised), whether AppArmor or SELinux is enabled (`/sys/module/apparmor`,
//! `/sys/fs/selinux`), whether resctrl is mounted, `cap_last_cap`, and the online CPUs
//! and memory nodes cpusets are checked against.

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::namespaces::{IdMapping, NamespacePlan};
use crate::process::caps::{self, CapSets};
use crate::rootfs::{self, devices, options, RootfsPlan};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Rlimit {
    pub name: String,
    pub resource: libc::c_int,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// PATH from `env`, for finding args[0].
    pub path_env: String,
    pub has_home: bool,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<Rlimit>,
    pub caps: Option<CapSets>,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub oom_score_adj: Option<i32>,
    /// fds 3..3+preserve_fds are passed to the container process.
    pub preserve_fds: u32,
    /// Join a fresh session keyring named `_ses.<id>` (runc's default).
    pub new_keyring: bool,
    /// Give the process a pty whose master goes to the console socket.
    pub terminal: bool,
    /// (rows, columns) for the pty.
    pub console_size: Option<(u16, u16)>,
    /// The compiled seccomp filter of the container.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// I/O priority, scheduler, affinity, personality, memory policy.
    pub attrs: crate::process::attrs::Attrs,
}

/// AppArmor profiles and SELinux labels, as runc treats them on a host without those
/// LSMs: asking for one is an error, not silently ignored.
fn check_lsm_labels(p: &oci_spec::runtime::Process) -> Result<()> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if set(p.apparmor_profile()) {
        let on = crate::sys::fs::read_text(Path::new("/sys/module/apparmor/parameters/enabled"))
            .is_ok_and(|s| s.trim() == "Y");
        let why = if on {
            "AppArmor profiles are not supported yet"
        } else {
            "AppArmor is not enabled on this host"
        };
        return Err(Error::config("process.apparmorProfile", why));
    }
    if set(p.selinux_label()) {
        let on = crate::sys::fs::exists(Path::new("/sys/fs/selinux/enforce"));
        let why = if on {
            "SELinux labels are not supported yet"
        } else {
            "SELinux is not enabled on this host"
        };
        return Err(Error::config("process.selinuxLabel", why));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub bundle: PathBuf,
    pub ns: NamespacePlan,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    /// The uid and gid the init builds the container as in a user namespace: root, or,
    /// where the mappings leave out 0, the process's own ids (runc's "userns without
    /// root mapping"); an unmapped id could create no file (EOVERFLOW).
    pub setup_ids: (u32, u32),
    pub time_offsets: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub rootfs: RootfsPlan,
    pub process: ProcessPlan,
    pub hooks: crate::hooks::Hooks,
    /// The state document of the init's own hooks, rendered before the fork.
    pub init_hook_state: InitHookState,
    pub annotations: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// The cgroup files `linux.resources` asks for, in order.
    pub cgroup_writes: Vec<crate::cgroups::resources::Write>,
    /// `linux.sysctl`, sorted by key.
    pub sysctl: Vec<(String, String)>,
    /// The device rules (for the v2 eBPF device filter).
    pub device_rules: Vec<crate::cgroups::device_rules::DeviceRule>,
}

pub struct PlanOptions {
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub new_keyring: bool,
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV was in linux.seccomp.flags.
    pub seccomp_wait_killable_recv: bool,
}

pub fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as libc::c_int)
}

fn cstrings(field: &str, v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .enumerate()
        .map(|(i, s)| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::config(format!("{field}[{i}]"), "contains a NUL byte"))
        })
        .collect()
}

/// Build the plan. `bundle` is absolute; `cgroup` is the container's resolved cgroup.
/// The parts in the order their errors are found: the init's process, the root
/// filesystem, the cgroup files, then what cannot fail (id maps, time offsets, uts,
/// hooks, sysctls).
pub fn build(
    spec: &Spec,
    id: &str,
    bundle: &Path,
    cgroup: Cgroup,
    o: &PlanOptions,
) -> Result<Plan> {
    let mut warnings = Vec::new();
    let linux = spec.linux().clone().unwrap_or_default();
    let ns = NamespacePlan::new(linux.namespaces().as_deref().unwrap_or_default());
    let process = init_process_plan(spec, o, &linux, &mut warnings)?;
    let rootfs = rootfs_plan(spec, &linux, bundle, &ns, cgroup, o, &process)?;
    let (cgroup_writes, device_rules) = cgroup_plan(&linux, rootfs.cgroup.mode)?;
    let uid_mappings = IdMapping::list(linux.uid_mappings().as_deref().unwrap_or_default());
    let gid_mappings = IdMapping::list(linux.gid_mappings().as_deref().unwrap_or_default());
    let setup_ids = (
        setup_id(&uid_mappings, process.uid),
        setup_id(&gid_mappings, process.gid),
    );
    let mut plan = Plan {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        setup_ids,
        uid_mappings,
        gid_mappings,
        ns,
        time_offsets: time_offsets(&linux),
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
        rootfs,
        process,
        hooks: crate::hooks::Hooks::from_spec(spec.hooks().as_ref()),
        annotations: spec
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        warnings,
        cgroup_writes,
        device_rules,
        sysctl: sorted_sysctls(&linux),
        init_hook_state: InitHookState::default(),
    };
    if !plan.hooks.create_container.is_empty() || !plan.hooks.start_container.is_empty() {
        plan.init_hook_state = InitHookState::render(&plan.hook_state(i32::MIN, "created"))?;
    }
    Ok(plan)
}

/// The state document createContainer and startContainer hooks read, which the init runs
/// after the fork: serialised here, around the one value only the init learns (its pid
/// as the host sees it, from `Proceed`), so the init only writes a number between the
/// two parts. Empty when the spec has neither kind of hook.
#[derive(Debug, Clone, Default)]
pub struct InitHookState {
    before_pid: String,
    after_pid: String,
}

impl InitHookState {
    /// Split the JSON of `st`, whose pid is a placeholder, at its pid. The `"pid":` key
    /// followed by a number appears once: a string value or a key holding it would
    /// have its quotes escaped.
    fn render(st: &crate::state::OciState) -> Result<InitHookState> {
        let json = serde_json::to_string(st).map_err(|e| Error::container(e.to_string()))?;
        let (key, pid) = ("\"pid\":", st.pid.to_string());
        let at = json
            .find(&format!("{key}{pid}"))
            .ok_or_else(|| Error::container("the hook state has no pid"))?
            + key.len();
        Ok(InitHookState {
            before_pid: json[..at].to_string(),
            after_pid: json[at + pid.len()..].to_string(),
        })
    }

    /// The document with the init's host pid.
    pub fn json(&self, pid: i32) -> Vec<u8> {
        format!("{}{pid}{}", self.before_pid, self.after_pid).into_bytes()
    }
}

/// The init's process. The runtime-spec: execCPUAffinity "is not applicable to the
/// container's init process"; it is for processes `exec` starts.
fn init_process_plan(
    spec: &Spec,
    o: &PlanOptions,
    linux: &oci_spec::runtime::Linux,
    warnings: &mut Vec<String>,
) -> Result<ProcessPlan> {
    let proc = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;
    let mut process = process_plan(proc, o, Some(linux), warnings)?;
    process.attrs.affinity_initial = None;
    process.attrs.affinity_final = None;
    Ok(process)
}

/// `root.path` made absolute against the bundle and canonicalised: a directory.
fn root_dir(root: &oci_spec::runtime::Root, bundle: &Path) -> Result<PathBuf> {
    let root_path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let root_path = crate::sys::fs::canonicalize(&root_path, "root.path")?;
    if !crate::sys::fs::is_dir(&root_path) {
        return Err(Error::config(
            "root.path",
            format!("{} is not a directory", root_path.display()),
        ));
    }
    Ok(root_path)
}

/// The root filesystem: the root, its mounts and devices, propagation, masked and
/// read-only paths, and where the init's cwd is.
fn rootfs_plan(
    spec: &Spec,
    linux: &oci_spec::runtime::Linux,
    bundle: &Path,
    ns: &NamespacePlan,
    cgroup: Cgroup,
    o: &PlanOptions,
    process: &ProcessPlan,
) -> Result<RootfsPlan> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "missing"))?;
    let root_path = root_dir(root, bundle)?;
    let mounts = rootfs::plan_mounts(spec, bundle)?;
    let setup_dev = !mounts
        .iter()
        .any(|m| m.dest == Path::new("/dev") && matches!(m.kind, rootfs::MountKind::Bind { .. }));
    let devices = linux
        .devices()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, d)| devices::from_spec(i, d))
        .collect::<Result<Vec<_>>>()?;
    let final_propagation = rootfs_propagation(linux)?;
    let paths = |v: &Option<Vec<String>>| -> Vec<PathBuf> {
        v.as_deref()
            .unwrap_or_default()
            .iter()
            .map(PathBuf::from)
            .collect()
    };
    Ok(RootfsPlan {
        root: root_path,
        readonly: root.readonly().unwrap_or(false),
        root_propagation: crate::rootfs::initial_propagation(final_propagation),
        final_propagation,
        mounts,
        setup_dev,
        devices,
        masked_paths: paths(linux.masked_paths()),
        readonly_paths: paths(linux.readonly_paths()),
        no_pivot: o.no_pivot,
        host_mount_ns: !ns.has(LinuxNamespaceType::Mount),
        bind_devices: ns.in_user_ns(),
        cgroup,
        cgroup_ns: ns.has(LinuxNamespaceType::Cgroup),
        cwd: process.cwd.clone(),
    })
}

/// `linux.rootfsPropagation` as mount flags; none when unset or empty.
fn rootfs_propagation(linux: &oci_spec::runtime::Linux) -> Result<Option<nix::mount::MsFlags>> {
    match linux.rootfs_propagation().as_deref() {
        None | Some("") => Ok(None),
        Some(p) => options::propagation(p).map(Some).ok_or_else(|| {
            Error::config(
                "linux.rootfsPropagation",
                format!("unknown propagation {p:?}"),
            )
        }),
    }
}

/// `linux.resources` as the cgroup files to write (v2, or v1 on v1 and hybrid hosts) and
/// the device rules.
fn cgroup_plan(
    linux: &oci_spec::runtime::Linux,
    mode: crate::cgroups::Mode,
) -> Result<(
    Vec<crate::cgroups::resources::Write>,
    Vec<crate::cgroups::device_rules::DeviceRule>,
)> {
    let resources = linux.resources().clone().unwrap_or_default();
    crate::cgroups::resources::check_cpusets(&resources)?;
    let writes = match mode {
        crate::cgroups::Mode::V2 => crate::cgroups::resources::v2(&resources)?,
        _ => crate::cgroups::resources::v1(&resources, true)?,
    };
    let device_rules = crate::cgroups::device_rules::from_resources(&resources)?;
    Ok((writes, device_rules))
}

/// `linux.timeOffsets` as the lines of /proc/PID/timens_offsets, by clock name.
fn time_offsets(linux: &oci_spec::runtime::Linux) -> Option<String> {
    let t = linux.time_offsets().as_ref().filter(|t| !t.is_empty())?;
    let mut keys: Vec<_> = t.keys().collect();
    keys.sort();
    Some(
        keys.iter()
            .map(|k| {
                let o = &t[*k];
                format!(
                    "{k} {} {}\n",
                    o.secs().unwrap_or(0),
                    o.nanosecs().unwrap_or(0)
                )
            })
            .collect(),
    )
}

/// `linux.sysctl`, sorted by key.
fn sorted_sysctls(linux: &oci_spec::runtime::Linux) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    v.sort();
    v
}

/// Root where the mappings map it (or there are none: a joined user namespace), else the
/// process's id if mapped, else the first id mapped.
fn setup_id(maps: &[IdMapping], process: u32) -> u32 {
    use crate::namespaces::to_host;
    match maps.first() {
        Some(first) if to_host(maps, 0).is_none() => match to_host(maps, process) {
            Some(_) => process,
            None => first.container,
        },
        _ => 0,
    }
}

/// `process` → ProcessPlan: shared by the container's init and by `exec`.
pub fn process_plan(
    proc: &oci_spec::runtime::Process,
    o: &PlanOptions,
    linux: Option<&oci_spec::runtime::Linux>,
    warnings: &mut Vec<String>,
) -> Result<ProcessPlan> {
    check_lsm_labels(proc)?;
    // fds 3..3+N pass to the process: none of them can lie at or past the open-file
    // limit, and a huge N must not wrap 3+N round to mark nothing close-on-exec.
    let (_, nofile) = crate::sys::privilege::getrlimit(libc::RLIMIT_NOFILE as libc::c_int)?;
    if u64::from(o.preserve_fds) + 3 > nofile {
        return Err(Error::container(format!(
            "--preserve-fds {}: fds from 3 on would go past the open-file limit {nofile}",
            o.preserve_fds
        )));
    }
    let attrs = crate::process::attrs::plan(proc, linux)?;
    let seccomp = seccomp_plan(linux, o, warnings)?;
    let env = dedup_env(proc.env().as_deref().unwrap_or_default());
    let path_env = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string();
    let rlimits = rlimits_plan(proc)?;
    let last_cap = caps::last_cap();
    let caps = match proc.capabilities() {
        Some(c) => Some(caps::plan(c, last_cap, &mut |w| warnings.push(w))?),
        None => None,
    };
    let args = proc.args().as_deref().unwrap_or_default();
    // `validate::process_fields` refuses this for the user before any plan; kept here as
    // the invariant the init's `args[0]` after the fork relies on, whoever builds a plan.
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::config("process.args", "missing or empty"));
    }
    let user = proc.user();
    Ok(ProcessPlan {
        args: cstrings("process.args", args)?,
        // An empty HOME is set from passwd, as runc does.
        has_home: env.iter().any(|e| e.starts_with("HOME=") && e.len() > 5),
        env: cstrings("process.env", &env)?,
        path_env,
        cwd: rootfs::clean(proc.cwd()),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        rlimits,
        caps,
        last_cap,
        no_new_privs: proc.no_new_privileges().unwrap_or(false),
        oom_score_adj: proc.oom_score_adj(),
        preserve_fds: o.preserve_fds,
        new_keyring: o.new_keyring,
        terminal: proc.terminal().unwrap_or(false),
        seccomp,
        attrs,
        console_size: proc
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16)),
    })
}

/// `linux.seccomp` compiled; the syscalls libseccomp does not know are skipped with a
/// warning.
fn seccomp_plan(
    linux: Option<&oci_spec::runtime::Linux>,
    o: &PlanOptions,
    warnings: &mut Vec<String>,
) -> Result<Option<crate::seccomp::Filter>> {
    let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let f = crate::seccomp::compile(s, o.seccomp_wait_killable_recv)?;
    if !f.skipped.is_empty() {
        warnings.push(format!(
            "seccomp: syscalls unknown to libseccomp skipped: {}",
            f.skipped.join(", ")
        ));
    }
    Ok(Some(f))
}

/// `process.rlimits`, each type named by its field when unknown.
fn rlimits_plan(proc: &oci_spec::runtime::Process) -> Result<Vec<Rlimit>> {
    proc.rlimits()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = r.typ().to_string();
            let resource = rlimit_resource(&name).ok_or_else(|| {
                Error::config(
                    format!("process.rlimits[{i}].type"),
                    format!("unknown rlimit {name:?}"),
                )
            })?;
            Ok(Rlimit {
                name,
                resource,
                soft: r.soft(),
                hard: r.hard(),
            })
        })
        .collect()
}

/// One entry per variable, the last one given winning (runc's rule: `exec --env K=V`
/// replaces the config's `K`), kept in the order of those last entries.
pub fn dedup_env(env: &[String]) -> Vec<String> {
    let key = |e: &String| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_string());
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = env
        .iter()
        .rev()
        .filter(|e| seen.insert(key(e)))
        .cloned()
        .collect();
    out.reverse();
    out
}

impl ProcessPlan {
    /// Add (or replace) an environment variable.
    pub fn add_env(&mut self, kv: &str) {
        let key = kv.split('=').next().unwrap_or("");
        self.env
            .retain(|e| !e.to_bytes().starts_with(format!("{key}=").as_bytes()));
        if let Ok(c) = CString::new(kv) {
            self.env.push(c);
        }
    }
}

impl Plan {
    /// Whether the parent must run prestart/createRuntime hooks mid-protocol.
    pub fn has_runtime_hooks(&self) -> bool {
        !self.hooks.prestart.is_empty() || !self.hooks.create_runtime.is_empty()
    }
}

impl Plan {
    /// The state document hooks receive on stdin while the container is being set up.
    pub fn hook_state(&self, pid: i32, status: &str) -> crate::state::OciState {
        crate::state::OciState {
            oci_version: crate::state::OCI_VERSION.into(),
            id: self.id.clone(),
            pid,
            status: status.into(),
            bundle: self.bundle.display().to_string(),
            rootfs: self.rootfs.root.display().to_string(),
            created: String::new(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dedup_env;

    #[test]
    fn init_hook_state_is_the_state_document_with_the_pid_put_in() {
        let mut st = crate::state::OciState {
            oci_version: crate::state::OCI_VERSION.into(),
            id: "c1".into(),
            pid: i32::MIN,
            status: "created".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: String::new(),
            annotations: [("k\"pid\":".to_string(), "\"pid\":-2147483648".to_string())].into(),
        };
        let rendered = super::InitHookState::render(&st).unwrap();
        st.pid = 4242;
        assert_eq!(
            rendered.json(4242),
            serde_json::to_vec(&st).unwrap(),
            "{}",
            String::from_utf8_lossy(&rendered.json(4242))
        );
    }

    #[test]
    fn last_value_of_a_variable_wins() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedup_env(&v(&["A=1", "B=2", "A=3", "C", "C=4"])),
            v(&["B=2", "A=3", "C=4"])
        );
        assert_eq!(dedup_env(&v(&["PATH=/bin"])), v(&["PATH=/bin"]));
    }

    #[test]
    fn setup_id_is_root_unless_root_is_unmapped() {
        use super::setup_id;
        let map = |container: u32, size: u32| crate::namespaces::IdMapping {
            container,
            host: 100000,
            size,
        };
        assert_eq!(setup_id(&[], 1000), 0);
        assert_eq!(setup_id(&[map(0, 65536)], 1000), 0);
        assert_eq!(setup_id(&[map(1000, 1)], 1000), 1000);
        assert_eq!(setup_id(&[map(500, 10)], 1000), 500);
    }
}

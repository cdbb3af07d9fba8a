//! The Kubernetes node path without a kubelet: a CRI client (doing what the kubelet does
//! for a pod) → containerd 1.6's CRI plugin → the runc v2 shim → rsrun, chosen by the
//! runtime handler `rsrun` (what a RuntimeClass names). Needs root, containerd, umoci,
//! busybox-static; RSRUN_BIN points at the rsrun binary.

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};

#[path = "../../common/proc_cgroup.rs"]
mod proc_cgroup;

struct Node {
    dir: PathBuf,
    sock: PathBuf,
    daemon: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Whatever a failed run left mounted below the test directory.
        if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut m: Vec<String> = mi
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(String::from))
                .filter(|p| p.starts_with(self.dir.to_str().unwrap()))
                .collect();
            m.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in m {
                let _ = Command::new("umount").args(["-l", &p]).status();
            }
        }
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A busybox image whose command sleeps forever (also the pod's sandbox image).
fn image_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "sleep", "echo", "ps", "cat", "dd", "ls", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let (l, u) = (dir.join("layout"), dir.join("unpacked"));
    let img = format!("{}:1", l.display());
    sh(&["umoci", "init", "--layout", l.to_str().unwrap()]);
    sh(&["umoci", "new", "--image", &img]);
    sh(&["umoci", "unpack", "--image", &img, u.to_str().unwrap()]);
    sh(&[
        "cp",
        "-a",
        &format!("{}/.", rootfs.display()),
        &format!("{}/rootfs/", u.display()),
    ]);
    sh(&["umoci", "repack", "--image", &img, u.to_str().unwrap()]);
    sh(&[
        "umoci",
        "config",
        "--image",
        &img,
        "--config.entrypoint",
        "/bin/sleep",
        "--config.cmd",
        "100000",
    ]);
    let tar = dir.join("img.tar");
    sh(&[
        "tar",
        "-C",
        l.to_str().unwrap(),
        "-cf",
        tar.to_str().unwrap(),
        ".",
    ]);
    tar
}

/// A containerd node with two runtime handlers, `rsrun` (through a wrapper that logs its
/// calls) and `runc`; `systemd_cgroup` is the handlers' `SystemdCgroup` option (pods then
/// name a slice as their cgroup parent, as the kubelet's systemd driver does).
fn start_node(dir: &Path, rsrun: &Path, systemd_cgroup: bool) -> Node {
    // The runtime binary containerd calls: rsrun, with every call recorded.
    let wrapper = dir.join("rsrun-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}/calls.log\nexec {} \"$@\"\n",
            dir.display(),
            rsrun.display()
        ),
    )
    .unwrap();
    sh(&["chmod", "+x", wrapper.to_str().unwrap()]);
    std::fs::create_dir_all(dir.join("cni/bin")).unwrap();
    std::fs::create_dir_all(dir.join("cni/conf")).unwrap();
    let sock = dir.join("containerd.sock");
    let d = dir.display();
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{sock}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "local.test/busybox:1"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "rsrun"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rsrun]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rsrun.options]
      BinaryName = "{w}"
      Root = "{d}/rsrun-root"
      SystemdCgroup = {systemd_cgroup}
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      BinaryName = "runc"
      Root = "{d}/runc-root"
      SystemdCgroup = {systemd_cgroup}
"#,
        sock = sock.display(),
        w = wrapper.display()
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let daemon = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("containerd");
    let node = Node {
        dir: dir.to_path_buf(),
        sock,
        daemon,
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !node.sock.exists() {
        assert!(Instant::now() < end, "containerd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let tar = image_tar(dir);
    sh(&[
        "ctr",
        "--address",
        node.sock.to_str().unwrap(),
        "-n",
        "k8s.io",
        "images",
        "import",
        "--base-name",
        "local.test/busybox",
        tar.to_str().unwrap(),
    ]);
    node
}

async fn connect(sock: &Path) -> Channel {
    let path = sock.to_path_buf();
    Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .unwrap()
}

/// Host network; pid and ipc shared by the pod (what the kubelet asks for here).
fn pod_namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Pod as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

fn pod_config(dir: &Path, name: &str) -> PodSandboxConfig {
    pod_config_in(dir, name, &format!("/rsrun-cri-test/{name}"))
}

fn pod_config_in(dir: &Path, name: &str, cgroup_parent: &str) -> PodSandboxConfig {
    let logs = dir.join("logs").join(name);
    std::fs::create_dir_all(&logs).unwrap();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: logs.to_str().unwrap().into(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(pod_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, cmd: &[&str], memory: i64) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: "local.test/busybox:1".into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: memory,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(pod_namespaces()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

struct Pod {
    id: String,
    config: PodSandboxConfig,
}

async fn run_pod(rt: &mut RuntimeServiceClient<Channel>, dir: &Path, name: &str) -> Pod {
    run_pod_with(rt, pod_config(dir, name), "rsrun").await
}

async fn run_pod_with(
    rt: &mut RuntimeServiceClient<Channel>,
    config: PodSandboxConfig,
    handler: &str,
) -> Pod {
    let name = config.metadata.as_ref().unwrap().name.clone();
    let r = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox {name}: {e}"));
    Pod {
        id: r.into_inner().pod_sandbox_id,
        config,
    }
}

async fn start_container(
    rt: &mut RuntimeServiceClient<Channel>,
    pod: &Pod,
    name: &str,
    cmd: &[&str],
    memory: i64,
) -> String {
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(container_config(name, cmd, memory)),
            sandbox_config: Some(pod.config.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"))
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
    id
}

async fn status(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> ContainerStatus {
    rt.container_status(ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap()
}

async fn wait_exited(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> ContainerStatus {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(rt, id).await;
        if s.state == ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(Instant::now() < end, "container {id} never exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn remove_pod(rt: &mut RuntimeServiceClient<Channel>, pod: &Pod) {
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.id.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.id.clone(),
    })
    .await
    .unwrap();
}

/// Nothing of rsrun's is left: no state, no cgroup below the pods' parent, no process in
/// one, no mount below the test directory.
fn assert_nothing_left(dir: &Path) {
    let mut procs = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup")) {
            if cg.contains("/rsrun-cri-test/") {
                procs.push(e.file_name());
            }
        }
    }
    assert!(
        procs.is_empty(),
        "processes left in the pods' cgroups: {procs:?}"
    );
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<&str> = mi
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap()))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
    // The shim passes `--root <Root>/<namespace>`.
    let root = dir.join("rsrun-root/k8s.io");
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "rsrun state left: {left:?}");
    for h in [
        "memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset", "systemd", "",
    ] {
        let base = if h.is_empty() {
            PathBuf::from("/sys/fs/cgroup/unified/rsrun-cri-test")
        } else {
            Path::new("/sys/fs/cgroup").join(h).join("rsrun-cri-test")
        };
        let base = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            PathBuf::from("/sys/fs/cgroup/rsrun-cri-test")
        } else {
            base
        };
        if let Ok(rd) = std::fs::read_dir(&base) {
            for pod in rd.flatten().filter(|e| e.path().is_dir()) {
                let inner: Vec<_> = std::fs::read_dir(pod.path())
                    .unwrap()
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path())
                    .collect();
                assert!(inner.is_empty(), "cgroups left: {inner:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubelet_flow_through_containerd_cri() {
    let rsrun = PathBuf::from(std::env::var("RSRUN_BIN").expect("RSRUN_BIN=path/to/rsrun"));
    let dir = std::env::temp_dir().join(format!("rsrun-cri-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let node = start_node(&dir, &std::fs::canonicalize(&rsrun).unwrap(), false);
    let channel = connect(&node.sock).await;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    let mut img = ImageServiceClient::new(channel.clone());
    let v = rt
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_name, "containerd");
    let images = img
        .list_images(ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner();
    assert!(
        images
            .images
            .iter()
            .any(|i| i.repo_tags.iter().any(|t| t == "local.test/busybox:1")),
        "image not imported"
    );

    // One pod, two containers sharing its pid namespace.
    let pod = run_pod(&mut rt, &dir, "pod-a").await;
    let c1 = start_container(
        &mut rt,
        &pod,
        "c1",
        &["sh", "-c", "echo hello-from-c1; exec sleep 1000"],
        0,
    )
    .await;
    let c2 = start_container(&mut rt, &pod, "c2", &["sh", "-c", "exec sleep 2000"], 0).await;
    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: c1.clone(),
            cmd: vec!["sh".into(), "-c".into(), "echo exec-ok; exit 3".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.exit_code, String::from_utf8_lossy(&r.stdout).to_string()),
        (3, "exec-ok\n".to_string())
    );
    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: c2.clone(),
            cmd: vec!["ps".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let ps = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(
        ps.contains("sleep 1000") && ps.contains("sleep 2000") && ps.contains("sleep 100000"),
        "pid namespace not shared:\n{ps}"
    );
    // The container's log file, written by the shim from the container's stdout.
    let log = std::fs::read_to_string(dir.join("logs/pod-a/c1.log")).unwrap();
    assert!(log.contains(" stdout F hello-from-c1"), "{log}");

    // A container OOM-killed under its memory limit.
    let c3 = start_container(
        &mut rt,
        &pod,
        "c3",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        16 << 20,
    )
    .await;
    let s = wait_exited(&mut rt, &c3).await;
    assert_eq!(
        (s.exit_code, s.reason.as_str()),
        (137, "OOMKilled"),
        "{s:?}"
    );

    // Stop with a grace period: sleep ignores TERM as pid 1's child? It is killed after it.
    let t = Instant::now();
    rt.stop_container(StopContainerRequest {
        container_id: c1.clone(),
        timeout: 1,
    })
    .await
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));
    let s = wait_exited(&mut rt, &c1).await;
    assert!(s.exit_code == 137 || s.exit_code == 143, "{s:?}");
    assert_eq!(s.reason, "Error");
    for c in [&c1, &c2, &c3] {
        let _ = rt
            .stop_container(StopContainerRequest {
                container_id: c.to_string(),
                timeout: 0,
            })
            .await;
        rt.remove_container(RemoveContainerRequest {
            container_id: c.to_string(),
        })
        .await
        .unwrap();
    }
    remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&dir);

    // The runtime calls rsrun received, for each container and the sandbox.
    let calls = std::fs::read_to_string(dir.join("calls.log")).unwrap();
    for id in [&pod.id, &c1, &c2, &c3] {
        for verb in ["create", "start", "delete"] {
            assert!(
                calls
                    .lines()
                    .any(|l| l.contains(&format!(" {verb} ")) && l.ends_with(id.as_str())),
                "no `{verb}` for {id}:\n{calls}"
            );
        }
    }
    assert!(
        calls
            .lines()
            .any(|l| l.contains(" exec ") && l.contains("--process")),
        "no exec:\n{calls}"
    );
    assert!(
        calls.lines().any(|l| l.contains(" kill ")),
        "no kill:\n{calls}"
    );

    // 20 pods created and removed 4 at a time.
    for batch in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (ch, dir) = (channel.clone(), dir.clone());
            tasks.push(tokio::spawn(async move {
                let mut rt = RuntimeServiceClient::new(ch);
                let name = format!("many-{batch}-{i}");
                let pod = run_pod(&mut rt, &dir, &name).await;
                let c = start_container(&mut rt, &pod, "app", &["sleep", "1000"], 0).await;
                rt.stop_container(StopContainerRequest {
                    container_id: c.clone(),
                    timeout: 0,
                })
                .await
                .unwrap();
                rt.remove_container(RemoveContainerRequest { container_id: c })
                    .await
                    .unwrap();
                remove_pod(&mut rt, &pod).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    assert_nothing_left(&dir);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Report that `test` cannot run on this host, and why (as integration/common's `skip`):
/// with `RSRUN_ALLOWED_SKIPS` set, any skip it does not list fails.
fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    if let Ok(allowed) = std::env::var("RSRUN_ALLOWED_SKIPS") {
        assert!(
            allowed.split(',').any(|t| t.trim() == test),
            "unexpected skip of {test} ({why}): this lane expects {allowed:?}"
        );
    }
}

fn systemctl_show(unit: &str, property: &str) -> String {
    let o = Command::new("systemctl")
        .args(["show", "--value", "-p", property, unit])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn units_like(pattern: &str) -> String {
    let o = Command::new("systemctl")
        .args(["list-units", "--all", "--no-legend", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The cgroup (v2, or name=systemd on a hybrid host) of `pid`.
fn cgroup_of(pid: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    proc_cgroup::v2_or_systemd_path(&text)
}

/// The init pid the runtime recorded for container `id` under the handler's root.
fn runtime_pid(dir: &Path, handler: &str, id: &str) -> String {
    let state = dir.join(format!("{handler}-root/k8s.io/{id}/state.json"));
    let text = std::fs::read_to_string(&state).unwrap_or_default();
    let at = text
        .find("\"init_process_pid\":")
        .or_else(|| text.find("\"pid\":"));
    at.map(|i| {
        text[i..]
            .split(':')
            .nth(1)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect()
    })
    .unwrap_or_default()
}

/// What systemd shows of a pod and its container under one runtime handler.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodSeen {
    /// Per unit (sandbox, container): ActiveState, Slice, and whether the runtime's init
    /// is in the unit's cgroup.
    units: Vec<(String, String, bool)>,
    /// The container's memory limit and swap properties.
    memory: Vec<String>,
    exec: (i32, String),
    /// Units and cgroup directories left once the pod is removed.
    left: Vec<String>,
}

async fn pod_under_systemd(
    rt: &mut RuntimeServiceClient<Channel>,
    dir: &Path,
    handler: &str,
) -> PodSeen {
    // The kubelet's systemd driver names the pod's slice from its QoS class and uid.
    let slice = format!("kubepods-besteffort-podsd{handler}.slice");
    let pod = run_pod_with(
        rt,
        pod_config_in(dir, &format!("sd-{handler}"), &slice),
        handler,
    )
    .await;
    let c = start_container(rt, &pod, "app", &["sleep", "1000"], 64 << 20).await;
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut units = Vec::new();
    let mut cgroups = Vec::new();
    for id in [&pod.id, &c] {
        let unit = format!("cri-containerd-{id}.scope");
        let cg = systemctl_show(&unit, "ControlGroup");
        let pid = runtime_pid(dir, handler, id);
        units.push((
            systemctl_show(&unit, "ActiveState"),
            systemctl_show(&unit, "Slice"),
            !cg.is_empty() && cgroup_of(&pid) == cg,
        ));
        cgroups.push(cg);
    }
    let unit = format!("cri-containerd-{c}.scope");
    let memory = if v2 {
        vec![
            systemctl_show(&unit, "MemoryMax"),
            systemctl_show(&unit, "MemorySwapMax"),
        ]
    } else {
        vec![systemctl_show(&unit, "MemoryLimit")]
    };
    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: c.clone(),
            cmd: vec!["sh".into(), "-c".into(), "echo exec-ok; exit 3".into()],
            timeout: 30,
        })
        .await
        .unwrap()
        .into_inner();
    let exec = (r.exit_code, String::from_utf8_lossy(&r.stdout).to_string());
    rt.stop_container(StopContainerRequest {
        container_id: c.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    rt.remove_container(RemoveContainerRequest {
        container_id: c.clone(),
    })
    .await
    .unwrap();
    remove_pod(rt, &pod).await;
    let mut left: Vec<String> = [&pod.id, &c]
        .iter()
        .map(|id| units_like(&format!("cri-containerd-{id}.scope")))
        .filter(|u| !u.is_empty())
        .collect();
    for cg in cgroups.iter().filter(|cg| !cg.is_empty()) {
        let hierarchies: Vec<PathBuf> = if v2 {
            vec![PathBuf::from("/sys/fs/cgroup")]
        } else {
            std::fs::read_dir("/sys/fs/cgroup")
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        };
        for h in hierarchies {
            let d = h.join(cg.trim_start_matches('/'));
            if d.exists() {
                left.push(d.display().to_string());
            }
        }
    }
    PodSeen {
        units,
        memory,
        exec,
        left,
    }
}

/// containerd's CRI plugin with `SystemdCgroup = true` (what kubeadm configures): each
/// pod's sandbox and container are scopes `cri-containerd-ID.scope` in the pod's slice,
/// with the container's memory limit as a unit property, and nothing is left once the pod
/// is removed; the same as with runc. Needs systemd as PID 1 (make test-systemd).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn systemd_cgroup_pods_through_containerd_cri() {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if comm.trim() != "systemd" || !Path::new("/run/systemd/system").is_dir() {
        skip(
            "systemd_cgroup_pods_through_containerd_cri",
            "PID 1 is not systemd (make test-systemd runs this in a systemd guest)",
        );
        return;
    }
    let rsrun = PathBuf::from(std::env::var("RSRUN_BIN").expect("RSRUN_BIN=path/to/rsrun"));
    let dir = std::env::temp_dir().join(format!("rsrun-cri-sd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let node = start_node(&dir, &std::fs::canonicalize(&rsrun).unwrap(), true);
    let mut rt = RuntimeServiceClient::new(connect(&node.sock).await);
    let runc = pod_under_systemd(&mut rt, &dir, "runc").await;
    let rsrun = pod_under_systemd(&mut rt, &dir, "rsrun").await;
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let want = PodSeen {
        units: vec![
            (
                "active".into(),
                "kubepods-besteffort-podsdrunc.slice".into(),
                true
            );
            2
        ],
        memory: runc.memory.clone(),
        exec: (3, "exec-ok\n".into()),
        left: Vec::new(),
    };
    assert_eq!(runc, want, "with runc");
    assert_eq!(runc.memory[0], "67108864");
    let rsrun_in_runc_slice = PodSeen {
        units: rsrun
            .units
            .iter()
            .map(|(a, s, p)| (a.clone(), s.replace("podsdrsrun", "podsdrunc"), *p))
            .collect(),
        ..rsrun.clone()
    };
    assert_eq!(rsrun_in_runc_slice, runc, "rsrun vs runc (v2: {v2})");
    let calls = std::fs::read_to_string(dir.join("calls.log")).unwrap();
    assert!(calls.contains("--systemd-cgroup"), "{calls}");
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

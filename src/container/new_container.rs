//! A new container (`create`, `restore`) from its record on: the record is written
//! before anything of the container exists and names the cgroup directories it will
//! make (crash consistency: see `state`), and a failure before the init is recorded
//! undoes what was made.

use crate::cgroups::systemd::OwnCgroups;
use crate::error::Result;
use crate::plan::Plan;
use crate::state::{ContainerDir, State};
use std::path::Path;

pub(super) struct NewContainer {
    /// `<root>/<id>`, locked.
    pub dir: ContainerDir,
    /// The record, `creating` until the init is recorded.
    pub st: State,
    /// With the systemd driver, the cgroups rsrun leaves for its own once the init
    /// exists (the scope starts with rsrun in it), and before anything stops the scope.
    pub own: Option<OwnCgroups>,
}

impl NewContainer {
    /// The record of `plan`'s container (not yet saved) and its directory, made and
    /// locked under `root`.
    pub fn begin(root: &Path, plan: &mut Plan) -> Result<NewContainer> {
        plan.rootfs.cgroup.plan_create();
        let st = State {
            id: plan.id.clone(),
            pid: 0,
            start_time: 0,
            bundle: plan.bundle.clone(),
            rootfs: plan.rootfs.root.clone(),
            created: crate::clock::now_rfc3339(),
            annotations: plan.annotations.clone(),
            cgroup: plan.rootfs.cgroup.clone(),
            hooks: (!plan.hooks.is_empty()).then(|| plan.hooks.clone()),
            creating: true,
            host_mounts: match plan.rootfs.host_mount_ns {
                true => Some(crate::rootfs::HostMounts::before(&plan.rootfs.root)?),
                false => None,
            },
            shared_pid_ns: !plan.ns.private_pid_ns(),
        };
        let dir = ContainerDir::create(root, &plan.id)?;
        let own = match &st.cgroup.systemd {
            Some(_) => Some(OwnCgroups::save(&st.cgroup)?),
            None => None,
        };
        Ok(NewContainer { dir, st, own })
    }

    /// Undo a container whose create or restore failed: rsrun back in its own cgroups,
    /// with `kill` the processes left in the container's cgroups killed, the cgroups,
    /// the mounts made on the host and the directory removed.
    pub fn abandon(self, kill: bool) {
        if let Some(own) = &self.own {
            let _ = own.restore();
        }
        if kill {
            self.st.cgroup.kill_all();
        }
        let _ = self.st.cgroup.destroy();
        if let Some(m) = &self.st.host_mounts {
            let _ = m.undo();
        }
        let _ = self.dir.remove();
    }
}

// Copyright 2026 The papr-scm Authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! papr-scm's nodes in a VMM's own device tree: the root's `ibm,drc-*`
//! arrays merge the PMEM connectors with the VMM's memory (LMB) and CPU
//! connectors, the VMM writes its own nodes, and papr-scm writes
//! `/ibm,persistent-memory`. The result is checked and probed the way the
//! Linux driver reads it.
//!
//! `cargo run --example compose_fdt`

use papr_scm::config::{parse_uuid, MachineConfig, NvdimmConfig, Planner};
use papr_scm::fdt::{check_blob, pmem_drc_entries, write_persistent_memory};
use papr_scm::guest::discover;
use papr_scm::vm_fdt::FdtWriter;

/// One connector of any type, as the root's four arrays list it.
struct Drc {
    index: u32,
    power_domain: u32,
    name: String,
    ty: &'static str,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = MachineConfig::new(2 << 30, 8 << 30, 4);
    let mut planner = Planner::new(config)?;
    let uuid = parse_uuid("75a3cdd7-6a2f-4791-8d15-fe0a920e8e9e")?;
    let spec = planner.plug(&NvdimmConfig::new((1 << 30) + (128 << 10), 128 << 10, uuid))?;

    // The VMM's own connectors (QEMU's types: CPU 0x1, LMB 0x8) and
    // papr-scm's PMEM ones, in one list.
    let mut drcs: Vec<Drc> = (0..2u32)
        .map(|i| Drc {
            index: 0x1000_0000 | i,
            power_domain: u32::MAX,
            name: format!("CPU {i}"),
            ty: "CPU",
        })
        .chain((0..8u32).map(|i| Drc {
            index: 0x8000_0000 | i,
            power_domain: u32::MAX,
            name: format!("LMB {i}"),
            ty: "MEM",
        }))
        .collect();
    drcs.extend(pmem_drc_entries(config.slots).map(|e| Drc {
        index: e.index.raw(),
        power_domain: e.power_domain,
        name: e.name.to_string(),
        ty: e.drc_type,
    }));

    let count = drcs.len() as u32;
    let cells = |f: fn(&Drc) -> u32| {
        std::iter::once(count)
            .chain(drcs.iter().map(f))
            .collect::<Vec<u32>>()
    };
    let strings = |f: fn(&Drc) -> &str| {
        let mut v = count.to_be_bytes().to_vec();
        for d in &drcs {
            v.extend_from_slice(f(d).as_bytes());
            v.push(0);
        }
        v
    };

    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "qemu,pseries")?;
    // A node's properties come before its children (vm-fdt and the format).
    fdt.property_array_u32("ibm,drc-indexes", &cells(|d| d.index))?;
    fdt.property_array_u32("ibm,drc-power-domains", &cells(|d| d.power_domain))?;
    fdt.property("ibm,drc-names", &strings(|d| &d.name))?;
    fdt.property("ibm,drc-types", &strings(|d| d.ty))?;
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    fdt.end_node(cpus)?;
    let memory = fdt.begin_node("memory@0")?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[0, config.ram_size])?;
    fdt.end_node(memory)?;
    write_persistent_memory(&mut fdt, &[spec])?;
    fdt.end_node(root)?;
    let blob = fdt.finish()?;

    check_blob(&blob)?;
    let devices = discover(&blob)?;
    for d in &devices {
        let d = d.as_ref().map_err(|e| e.to_string())?;
        println!(
            "{}: drc {:#x}, {} blocks of {} MiB, label {} KiB",
            d.name,
            d.drc,
            d.blocks,
            d.block_size >> 20,
            d.metadata_size.unwrap_or(0) >> 10
        );
    }
    println!(
        "{} connectors ({} PMEM), a {}-byte tree",
        count,
        config.slots,
        blob.len()
    );
    Ok(())
}

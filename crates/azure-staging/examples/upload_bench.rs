//! Whole-upload timing against Azurite (start it first: `bash scripts/azurite.sh start http`).
//!
//! `cargo run -p azure-staging --example upload_bench [REPS]` uploads, into a fresh run each
//! repetition, (a) 200 files of 100 KB and (b) one 32 MiB file in 4 MiB blocks, at 8 requests
//! in flight, then repeats (a) as a no-op (all skipped). Prints every run and the medians.

use std::time::Instant;

use azure_staging::config::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use azure_staging::{AccountKey, Auth, LocalObject, StagingClient, StorageConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let port = std::env::var("AZURITE_HTTP_PORT").unwrap_or_else(|_| "10000".into());
    let config = StorageConfig::new(
        &format!("http://127.0.0.1:{port}/{DEV_ACCOUNT}"),
        DEV_ACCOUNT,
        Auth::AccountKey(AccountKey::new(DEV_ACCOUNT, DEV_ACCOUNT_KEY)?),
    )?;
    let client = StagingClient::builder(config)
        .container_prefix("bench")
        .concurrency(8)
        .build()?;

    let dir = tempfile::tempdir()?;
    let mut small = Vec::new();
    for i in 0..200u32 {
        let data: Vec<u8> = (0..100_000u32)
            .map(|j| (j.wrapping_mul(2_654_435_761) ^ i) as u8)
            .collect();
        let p = dir.path().join(format!("in{i}.csv"));
        std::fs::write(&p, data)?;
        small.push(LocalObject::from_file(&p).await?);
    }
    let big_path = dir.path().join("trainer");
    let big: Vec<u8> = (0..32u32 << 20)
        .map(|j| (j.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    std::fs::write(&big_path, big)?;
    let big = vec![LocalObject::from_file(&big_path).await?];

    let (mut t_small, mut t_big, mut t_skip) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        let run_id = format!("bench-{}-{rep}", std::process::id());
        let run = client.ensure_containers(&run_id).await?;
        let t = Instant::now();
        client.upload_objects(&run, &small, None).await?;
        t_small.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        client.upload_objects(&run, &big, None).await?;
        t_big.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let refs = client.upload_objects(&run, &small, None).await?;
        assert!(refs.iter().all(|r| !r.uploaded));
        t_skip.push(t.elapsed().as_secs_f64());
        client.delete_run(&run_id).await?;
        println!(
            "rep {rep}: 200x100KB {:.3} s, 32MiB blocks {:.3} s, 200 skipped {:.3} s",
            t_small[rep], t_big[rep], t_skip[rep]
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, b, k) = (
        median(&mut t_small),
        median(&mut t_big),
        median(&mut t_skip),
    );
    println!(
        "median of {reps}: 200x100KB {s:.3} s ({:.0} MB/s), 32MiB {b:.3} s ({:.0} MB/s), 200 skipped {k:.3} s",
        20.0 / s,
        33.554_432 / b
    );
    Ok(())
}

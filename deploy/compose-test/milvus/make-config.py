"""Unpack the PyPI `milvus` package's binary into ROOT/bin and write ROOT/configs/milvus.yaml.

The package's own template is rendered with data under DATA (the compose volume), the
embedded etcd off and MinIO as the storage type, so that the server is configured by the
same environment variables as the official image.
"""

import shutil
import sys
from pathlib import Path

import milvus

root, data = Path(sys.argv[1]), Path(sys.argv[2])
milvus._initialize_data_files(str(root))
config = milvus.MilvusServerConfig(data_dir=str(data))
config.set("etcd.use.embed", "false")
config.set("common.storageType", "minio")
config.resolve()
(root / "configs").mkdir(parents=True, exist_ok=True)
shutil.move(str(data / "configs" / "milvus.yaml"), root / "configs" / "milvus.yaml")
shutil.move(str(data / "configs" / "glog.conf"), root / "configs" / "glog.conf")
shutil.rmtree(data / "configs")
text = (root / "configs" / "milvus.yaml").read_text()
assert "embed: false" in text, "config not rewritten"
assert "storageType: minio" in text, "config not rewritten"

"""Every real callback sample in ../shared/corpus/callbacks, with hand-written expectations.

The table below was written by reading each sample (XML or JSON) by hand, not by running the
parser: a regression in the parser therefore shows up as a difference from what Tencent sent.
A new sample without an entry here makes ``test_table_covers_every_corpus_file`` fail.
"""

from __future__ import annotations

import json

import pytest

from conftest import CALLBACKS, corpus_file, needs_corpus

pytestmark = needs_corpus

from ci_callback import InvalidCallback, parse_callback  # noqa: E402  (conftest puts handler/ on sys.path)

# ------------------------------------------------------------------ shared values

CQ = "ap-chongqing"
BKT = "test-123456789"  # media-processing doc samples
PIC_BKT = "test-1234567890"  # PicProcess and workflow doc samples
DEMO_MP4 = {"bucket": BKT, "region": CQ, "object": "input/demo.mp4"}
DOC_RUN_ID = "ic90edd59f84f11ec9d4f525400a3c59f"
DOC_WORKFLOW_ID = "web6ac56c1ef54dbfa44d7f4103203be9"
REQUEST_ID = "NjJiZDYwYTFfNjUzYTYyNjRfZjEwZl8xMmZhYzY5"


def doc_workflow(name):
    """The Workflow node every workflow-triggered doc sample carries (only Name differs)."""
    return {"name": name, "run_id": DOC_RUN_ID, "workflow_id": DOC_WORKFLOW_ID, "workflow_name": "workflow-test"}


def doc_headers(content_type, size):
    """The four Input.CosHeaders of the workflow-triggered doc samples."""
    return {
        "Content-Type": content_type,
        "x-cos-request-id": REQUEST_ID,
        "EventName": "cos:ObjectCreated:Put",
        "Size": size,
    }


def out(key, bucket=BKT, region=CQ):
    return {"bucket": bucket, "region": region, "object": key}


def job(job_id, tag, created_at, input, outputs, *, details, message=None, workflow=None, headers=None,
        event="TaskFinish", legacy=False):
    return {
        "kind": "job",
        "event": event,
        "job_id": job_id,
        "tag": tag,
        "state": "Success",  # every job sample is a successful job
        "code": "Success",
        "message": message,
        "created_at": created_at,
        "input": input,
        "outputs": outputs,
        "workflow": workflow,
        "cos_headers": headers or {},
        "legacy": legacy,
        "details": details,
    }


def task(type, job_id, name, template_id, template_name, created_at, ended_at, state="Success"):
    return {
        "type": type,
        "state": state,
        "job_id": job_id,
        "name": name,
        "template_id": template_id,
        "template_name": template_name,
        "created_at": created_at,
        "ended_at": ended_at,
    }


# ------------------------------------------------------------------ per-Tag expectations

# PicProcess (image job; three well-formed variants of one doc sample)
PIC_ID = "c93984788066911ed89ed352d4d9d2084"
PIC_IN = {"bucket": PIC_BKT, "region": CQ, "object": "input/deer.jpg"}
PIC_OUT = [out("output/out.jpg", PIC_BKT)]
PIC_WF = {
    "name": "PicProcess_1581665960537",
    "run_id": DOC_RUN_ID,
    "workflow_id": DOC_WORKFLOW_ID,
    "workflow_name": "workflow-test",
}
PIC_HEADERS = doc_headers("image/jpeg", "1024")
PIC_T = "2022-07-18T15:16:43+08:00"

SDR_ID, SDR_T = "jafa709a2f86611ec9452c1c27f56a659", "2022-06-30T19:20:45+08:00"
SDR_OUT = [out("output/sdr2hdr.mp4")]

VOICE_ID, VOICE_T = "j40644e92f8e311ecb90d0b03267ce0e5", "2022-07-01T10:12:26+08:00"
VOICE_IN = {"bucket": BKT, "region": CQ, "object": "input/demo.mp3"}
VOICE_OUT = [out("output/audio.mp3"), out("output/backgroud.mp3")]
VOICE_HEADERS = doc_headers("video/mp3", "1326515")

SNAP_ID, SNAP_T = "j4e431ba0f86711ecb8546d80f2baf56f", "2022-06-30T19:25:11+08:00"
# ObjectName 0..5.jpg under ObjectPrefix output/snapshot-, plus the sprite 0.jpg under output/sprite-
SNAP_OUT = [out(f"output/snapshot-{i}.jpg") for i in range(6)] + [out("output/sprite-0.jpg")]

EXTRACT_ID, EXTRACT_T = "j515a494af86111ecb8546d80f2baf56f", "2022-06-30T18:42:20+08:00"
EXTRACT_IN = {"bucket": BKT, "region": CQ, "object": "output/digital.mp4"}

COVER_ID, COVER_T = "j6842765cf84611ecb8546d80f2baf56f", "2022-06-30T15:29:42+08:00"
COVER_OUT = [out(f"output/smartcover-{i}.jpg") for i in range(5)]

STREAM_ID, STREAM_T = "ja66d6204f86711ec9ca1073b78d316d3", "2022-06-30T19:27:39+08:00"
# MediaResult lists out0/out1 only; Output.StreamExtract's out2.mp4 was requested but never produced.
STREAM_OUT = [out("output/out0.mp4"), out("output/out1.mp4")]

DWM_ID, DWM_T = "ja8de3b46f86011ec9452c1c27f56a659", "2022-06-30T18:37:37+08:00"
DWM_OUT = [out("output/digital.mp4")]

MONTAGE_ID, MONTAGE_T = "j7b0dfbe2f86b11ec995acf5cffaf6664", "2022-06-30T19:55:05+08:00"
MONTAGE_OUT = [out("output/videoMontage.mp4")]

INFO_ID, INFO_T = "jb976c9e0f86111ec9452c1c27f56a659", "2022-06-30T18:45:14+08:00"

VPROC_ID, VPROC_T = "j7d0eafdaf86c11ecbdf419856486c0ab", "2022-06-30T20:02:17+08:00"
VPROC_OUT = [out("output/video-process.mp4")]

ANIM_ID, ANIM_T = "j682b9662f84611ecb8546d80f2baf56f", "2022-06-30T15:29:42+08:00"
ANIM_OUT = [out("output/animation.gif")]

SR_ID, SR_T = "j06668dc0f86811ecb90d0b03267ce0e5", "2022-06-30T19:30:20+08:00"
SR_OUT = [out("output/super_resolution.mp4")]

SEG_ID, SEG_T = "jd0c0da74f86511ec8a5a87e016101404", "2022-06-30T19:14:31+08:00"
# ObjectName 0..8 relative to ObjectPrefix output/segment-; Md5Info repeats the full keys.
SEG_OUT = [out(f"output/segment-{i}") for i in range(9)]

CONCAT_ID, CONCAT_T = "j07f6263af86011ecbdf419856486c0ab", "2022-06-30T18:33:07+08:00"
CONCAT_OUT = [out("output/concat.mp4")]

TRANS_ID, TRANS_T = "j68427030f84611ecb8546d80f2baf56f", "2022-06-30T15:29:42+08:00"
TRANS_OUT = [out("output/transcode.mp4")]
HIGH_OUT = [out("output/high_speed.mp4")]

# Legacy 任务回调内容 doc sample (Transcode-xml-5/6): Input in ap-beijing, output in ap-chongqing.
LEGACY_ID = "jccddc41c27e711ebbff5874bc5b36868"
LEGACY_IN = {"bucket": "examplebucket-1250000000", "region": "ap-beijing", "object": "1/2/3/4/5/xxx.mp4"}
LEGACY_OUT = [out("1/2/转mp4格式-xxx_iccba81fa27e711eb989d525400276c76.mp4", "examplebucket-1250000000")]
LEGACY_WF = {
    "name": "Transcode_1600413767444",
    "run_id": "rccddc41c27e711ebbff5874bc5b36868",
    "workflow_id": "wccddc41c27e711ebbff5874bc5b36868",
    "workflow_name": "workflow",
}
LEGACY_HEADERS = {"x-cos-meta-test": "testvalue", "x-cos-meta-name": "xxxxxx", "x-cos-meta-age": "10"}

MP4 = doc_headers("video/mp4", "1424687")

MEDIA = "MediaResult"
GENERIC = "GenericResult"
COVER = "SmartCoverResult"
PIC = "PicProcessResult"

# Workflow samples
WF_RUN = "i166ee19017b011eda8a5525400c540df"
WF_TASKS = [
    task("Snapshot", "j23c11e1e17b011edaab4ab15ec33d076", "Snapshot_1581665960536",
         "t07740e32081b44ad7a0aea03adcffd54a", "snapshot_1280*720_3",
         "2022-08-09T14:54:40+08:00", "2022-08-09T14:54:42+08:00"),
    task("Transcode", "j168668b217b011ed8efb27bb229e2d11", "Transcode_1581665960537",
         "t01e57db1c2d154d2fb57aa5de9313a897", "MP4-265-SD",
         "2022-08-09T14:54:18+08:00", "2022-08-09T14:54:39+08:00"),
]


def workflow(run_id, workflow_id, workflow_name, created_at, input, tasks, headers, *, legacy=False):
    return {
        "kind": "workflow",
        "event": "WorkflowFinish",
        "state": "Success",
        "run_id": run_id,
        "workflow_id": workflow_id,
        "workflow_name": workflow_name,
        "created_at": created_at,
        "input": input,
        "tasks": tasks,
        "cos_headers": headers,
        "legacy": legacy,
    }


WF_DOC = workflow(
    WF_RUN, DOC_WORKFLOW_ID, "workflow-3", "2022-08-09T14:54:17+08:00",
    {"bucket": PIC_BKT, "object": "wk-test/game.mp4"}, WF_TASKS,
    {"Content-Type": "video/mp4", "x-cos-request-id": REQUEST_ID},
)

# ------------------------------------------------------------------ the table: one entry per file

INVALID = "invalid"

EXPECTED = {
    # --- PicProcess
    "PicProcess-xml-1.xml": job(PIC_ID, "PicProcess", PIC_T, PIC_IN, PIC_OUT, details=PIC),
    "PicProcess-xml-2.xml": job(PIC_ID, "PicProcess", PIC_T, PIC_IN, PIC_OUT, details=PIC,
                                workflow=PIC_WF, headers=PIC_HEADERS),
    "PicProcess-json-1.json": INVALID,  # the doc's trailing comma after "JobLevel": 0
    "PicProcess-json-2.json": job(PIC_ID, "PicProcess", PIC_T, PIC_IN, PIC_OUT, details=PIC,
                                  workflow=PIC_WF, headers=PIC_HEADERS),
    # --- SDRtoHDR
    "SDRtoHDR-xml-1.xml": job(SDR_ID, "SDRtoHDR", SDR_T, DEMO_MP4, SDR_OUT, details=MEDIA),
    "SDRtoHDR-xml-2.xml": job(SDR_ID, "SDRtoHDR", SDR_T, DEMO_MP4, SDR_OUT, details=MEDIA,
                              workflow=doc_workflow("SDRtoHDR_1581665960537"), headers=MP4),
    "SDRtoHDR-json-1.json": job(SDR_ID, "SDRtoHDR", SDR_T, DEMO_MP4, SDR_OUT, details=MEDIA,
                                workflow=doc_workflow("SDRtoHDR_1581665960537"), headers=MP4),
    "SDRtoHDR-json-2.json": job(SDR_ID, "SDRtoHDR", SDR_T, DEMO_MP4, SDR_OUT, details=MEDIA,
                                workflow=doc_workflow("SDRtoHDR_1581665960537"), headers=MP4),
    # --- VoiceSeparate
    "VoiceSeparate-xml-1.xml": job(VOICE_ID, "VoiceSeparate", VOICE_T, VOICE_IN, VOICE_OUT, details=MEDIA),
    "VoiceSeparate-xml-2.xml": job(VOICE_ID, "VoiceSeparate", VOICE_T, VOICE_IN, VOICE_OUT, details=MEDIA,
                                   workflow=doc_workflow("VoiceSeparate_1581665960537"), headers=VOICE_HEADERS),
    "VoiceSeparate-json-1.json": job(VOICE_ID, "VoiceSeparate", VOICE_T, VOICE_IN, VOICE_OUT, details=MEDIA,
                                     workflow=doc_workflow("VoiceSeparate_1581665960537"), headers=VOICE_HEADERS),
    "VoiceSeparate-json-2.json": job(VOICE_ID, "VoiceSeparate", VOICE_T, VOICE_IN, VOICE_OUT, details=MEDIA,
                                     workflow=doc_workflow("VoiceSeparate_1581665960537"), headers=VOICE_HEADERS),
    # --- Snapshot
    "Snapshot-xml-1.xml": job(SNAP_ID, "Snapshot", SNAP_T, DEMO_MP4, SNAP_OUT, details=MEDIA),
    "Snapshot-xml-2.xml": job(SNAP_ID, "Snapshot", SNAP_T, DEMO_MP4, SNAP_OUT, details=MEDIA,
                              workflow=doc_workflow("Snapshot_1581665960537"), headers=MP4),
    "Snapshot-json-1.json": job(SNAP_ID, "Snapshot", SNAP_T, DEMO_MP4, SNAP_OUT, details=MEDIA,
                                workflow=doc_workflow("Snapshot_1581665960537"), headers=MP4),
    "Snapshot-json-2.json": job(SNAP_ID, "Snapshot", SNAP_T, DEMO_MP4, SNAP_OUT, details=MEDIA,
                                workflow=doc_workflow("Snapshot_1581665960537"), headers=MP4),
    # --- ExtractDigitalWatermark: no output object at all
    "ExtractDigitalWatermark-xml-1.xml": job(EXTRACT_ID, "ExtractDigitalWatermark", EXTRACT_T, EXTRACT_IN, [],
                                             details=GENERIC, message="done"),
    "ExtractDigitalWatermark-json-1.json": job(EXTRACT_ID, "ExtractDigitalWatermark", EXTRACT_T, EXTRACT_IN, [],
                                               details=GENERIC, message="done"),
    # --- SmartCover
    "SmartCover-xml-1.xml": job(COVER_ID, "SmartCover", COVER_T, DEMO_MP4, COVER_OUT, details=COVER),
    "SmartCover-xml-2.xml": job(COVER_ID, "SmartCover", COVER_T, DEMO_MP4, COVER_OUT, details=COVER,
                                workflow=doc_workflow("SmartCover_1581665960537"), headers=MP4),
    "SmartCover-json-1.json": job(COVER_ID, "SmartCover", COVER_T, DEMO_MP4, COVER_OUT, details=COVER,
                                  workflow=doc_workflow("SmartCover_1581665960537"), headers=MP4),
    "SmartCover-json-2.json": job(COVER_ID, "SmartCover", COVER_T, DEMO_MP4, COVER_OUT, details=COVER,
                                  workflow=doc_workflow("SmartCover_1581665960537"), headers=MP4),
    # --- StreamExtract (job-API triggered; no workflow, no headers)
    "StreamExtract-xml-1.xml": job(STREAM_ID, "StreamExtract", STREAM_T, DEMO_MP4, STREAM_OUT, details=MEDIA),
    "StreamExtract-json-1.json": job(STREAM_ID, "StreamExtract", STREAM_T, DEMO_MP4, STREAM_OUT, details=MEDIA),
    "StreamExtract-json-2.json": job(STREAM_ID, "StreamExtract", STREAM_T, DEMO_MP4, STREAM_OUT, details=MEDIA),
    # --- DigitalWatermark
    "DigitalWatermark-xml-1.xml": job(DWM_ID, "DigitalWatermark", DWM_T, DEMO_MP4, DWM_OUT, details=MEDIA),
    "DigitalWatermark-json-1.json": job(DWM_ID, "DigitalWatermark", DWM_T, DEMO_MP4, DWM_OUT, details=MEDIA),
    # --- VideoMontage
    "VideoMontage-xml-1.xml": job(MONTAGE_ID, "VideoMontage", MONTAGE_T, DEMO_MP4, MONTAGE_OUT, details=MEDIA),
    "VideoMontage-xml-2.xml": job(MONTAGE_ID, "VideoMontage", MONTAGE_T, DEMO_MP4, MONTAGE_OUT, details=MEDIA,
                                  workflow=doc_workflow("VideoMontage_1581665960537"), headers=MP4),
    "VideoMontage-json-1.json": job(MONTAGE_ID, "VideoMontage", MONTAGE_T, DEMO_MP4, MONTAGE_OUT, details=MEDIA,
                                    workflow=doc_workflow("VideoMontage_1581665960537"), headers=MP4),
    "VideoMontage-json-2.json": job(MONTAGE_ID, "VideoMontage", MONTAGE_T, DEMO_MP4, MONTAGE_OUT, details=MEDIA,
                                    workflow=doc_workflow("VideoMontage_1581665960537"), headers=MP4),
    # --- MediaInfo: no output object
    "MediaInfo-xml-1.xml": job(INFO_ID, "MediaInfo", INFO_T, DEMO_MP4, [], details=GENERIC),
    "MediaInfo-json-1.json": job(INFO_ID, "MediaInfo", INFO_T, DEMO_MP4, [], details=GENERIC),
    # --- VideoProcess
    "VideoProcess-xml-1.xml": job(VPROC_ID, "VideoProcess", VPROC_T, DEMO_MP4, VPROC_OUT, details=MEDIA),
    "VideoProcess-xml-2.xml": job(VPROC_ID, "VideoProcess", VPROC_T, DEMO_MP4, VPROC_OUT, details=MEDIA,
                                  workflow=doc_workflow("VideoProcess_1581665960537"), headers=MP4),
    "VideoProcess-json-1.json": job(VPROC_ID, "VideoProcess", VPROC_T, DEMO_MP4, VPROC_OUT, details=MEDIA,
                                    workflow=doc_workflow("VideoProcess_1581665960537"), headers=MP4),
    "VideoProcess-json-2.json": job(VPROC_ID, "VideoProcess", VPROC_T, DEMO_MP4, VPROC_OUT, details=MEDIA,
                                    workflow=doc_workflow("VideoProcess_1581665960537"), headers=MP4),
    # --- Animation
    "Animation-xml-1.xml": job(ANIM_ID, "Animation", ANIM_T, DEMO_MP4, ANIM_OUT, details=MEDIA),
    "Animation-xml-2.xml": job(ANIM_ID, "Animation", ANIM_T, DEMO_MP4, ANIM_OUT, details=MEDIA,
                               workflow=doc_workflow("Animation_1581665960537"), headers=MP4),
    "Animation-json-1.json": job(ANIM_ID, "Animation", ANIM_T, DEMO_MP4, ANIM_OUT, details=MEDIA,
                                 workflow=doc_workflow("Animation_1581665960537"), headers=MP4),
    # --- SuperResolution (nested DigitalWatermark State=Failed; the job itself succeeded)
    "SuperResolution-xml-1.xml": job(SR_ID, "SuperResolution", SR_T, DEMO_MP4, SR_OUT, details=MEDIA),
    "SuperResolution-xml-2.xml": job(SR_ID, "SuperResolution", SR_T, DEMO_MP4, SR_OUT, details=MEDIA,
                                     workflow=doc_workflow("SuperResolution_1581665960537"), headers=MP4),
    # Go SDK copy: same job, Output.Object is the template output/super_resolution.${ext}
    "SuperResolution-xml-3.xml": job(SR_ID, "SuperResolution", SR_T, DEMO_MP4, SR_OUT, details=MEDIA,
                                     workflow=doc_workflow("SuperResolution_1581665960537"), headers=MP4),
    # the JSON variants carry a doubled Workflow.Name
    "SuperResolution-json-1.json": job(SR_ID, "SuperResolution", SR_T, DEMO_MP4, SR_OUT, details=MEDIA,
                                       workflow=doc_workflow("SuperResolution_1581665960537_1581665960537"),
                                       headers=MP4),
    "SuperResolution-json-2.json": job(SR_ID, "SuperResolution", SR_T, DEMO_MP4, SR_OUT, details=MEDIA,
                                       workflow=doc_workflow("SuperResolution_1581665960537_1581665960537"),
                                       headers=MP4),
    # --- Segment
    "Segment-xml-1.xml": job(SEG_ID, "Segment", SEG_T, DEMO_MP4, SEG_OUT, details=MEDIA),
    "Segment-xml-2.xml": job(SEG_ID, "Segment", SEG_T, DEMO_MP4, SEG_OUT, details=MEDIA,
                             workflow=doc_workflow("Segment_1581665960537"), headers=MP4),
    "Segment-json-1.json": job(SEG_ID, "Segment", SEG_T, DEMO_MP4, SEG_OUT, details=MEDIA,
                               workflow=doc_workflow("Segment_1581665960537"), headers=MP4),
    "Segment-json-2.json": job(SEG_ID, "Segment", SEG_T, DEMO_MP4, SEG_OUT, details=MEDIA,
                               workflow=doc_workflow("Segment_1581665960537"), headers=MP4),
    # --- Concat
    "Concat-xml-1.xml": job(CONCAT_ID, "Concat", CONCAT_T, DEMO_MP4, CONCAT_OUT, details=MEDIA),
    "Concat-xml-2.xml": job(CONCAT_ID, "Concat", CONCAT_T, DEMO_MP4, CONCAT_OUT, details=MEDIA,
                            workflow=doc_workflow("Concat_1581665960537"), headers=MP4),
    "Concat-json-1.json": job(CONCAT_ID, "Concat", CONCAT_T, DEMO_MP4, CONCAT_OUT, details=MEDIA,
                              workflow=doc_workflow("Concat_1581665960537"), headers=MP4),
    # --- Transcode (Message "success")
    "Transcode-xml-1.xml": job(TRANS_ID, "Transcode", TRANS_T, DEMO_MP4, TRANS_OUT, details=MEDIA, message="success"),
    "Transcode-xml-2.xml": job(TRANS_ID, "Transcode", TRANS_T, DEMO_MP4, TRANS_OUT, details=MEDIA, message="success",
                               workflow=doc_workflow("Transcode_1581665960537"), headers=MP4),
    "Transcode-json-1.json": job(TRANS_ID, "Transcode", TRANS_T, DEMO_MP4, TRANS_OUT, details=MEDIA,
                                 message="success", workflow=doc_workflow("Transcode_1581665960537"), headers=MP4),
    "Transcode-json-2.json": job(TRANS_ID, "Transcode", TRANS_T, DEMO_MP4, TRANS_OUT, details=MEDIA,
                                 message="success", workflow=doc_workflow("Transcode_1581665960537"), headers=MP4),
    # 极速高清转码 (top-speed HD): same ids, output/high_speed.mp4
    "Transcode-xml-3.xml": job(TRANS_ID, "Transcode", TRANS_T, DEMO_MP4, HIGH_OUT, details=MEDIA, message="success"),
    "Transcode-xml-4.xml": job(TRANS_ID, "Transcode", TRANS_T, DEMO_MP4, HIGH_OUT, details=MEDIA, message="success",
                               workflow=doc_workflow("Transcode_1581665960537"), headers=MP4),
    "Transcode-json-3.json": job(TRANS_ID, "Transcode", TRANS_T, DEMO_MP4, HIGH_OUT, details=MEDIA,
                                 message="success", workflow=doc_workflow("HighSpeedHd_1581665960537"), headers=MP4),
    # legacy: no EventName, CosHeaders before Object, no StartTime
    "Transcode-xml-5.xml": job(LEGACY_ID, "Transcode", "2020-11-16T16:43:29+08:00", LEGACY_IN, LEGACY_OUT,
                               details=MEDIA, workflow=LEGACY_WF, headers=LEGACY_HEADERS, legacy=True),
    "Transcode-xml-6.xml": job(LEGACY_ID, "Transcode", "2020-11-16T16:43:29+08:00", LEGACY_IN, LEGACY_OUT,
                               details=MEDIA, workflow=LEGACY_WF, headers=LEGACY_HEADERS, legacy=True),
    # Go SDK 2021: empty <BucketId></BucketId> and <Bucket></Bucket> everywhere
    "Transcode-xml-7.xml": job(
        "j7123e78c152611ec9e8c1ba6632b91a8", "Transcode", "2021-09-14T14:38:59+08:00",
        {"bucket": None, "region": "ap-guangzhou", "object": "e28ef88b61ed41b7a6ea76a8147f4f9e"},
        [out("f89f22f7a8be4f478434da58eb11d7da.mp4", None, "ap-guangzhou")], details=MEDIA,
    ),
    # Go SDK 2022: no EventName, SpriteOutputFile with all children empty
    "Transcode-xml-8.xml": job(
        "jf6717076895711ecafdd594be6cca70c", "Transcode", "2022-02-09T11:25:43+08:00",
        {"bucket": "wwj-cq-1253960454", "region": CQ, "object": "input/117374C.mp4"},
        [out("output/go_117374C.mp4", "wwj-cq-1253960454")], details=MEDIA, legacy=True,
    ),
    # --- DocProcess (Java SDK): <?xml?> declaration, Input has only Object, page via TgtUri
    "DocProcess-xml-1.xml": job(
        "d89c4cf4a728311ebb1229f23e6c9963b", "DocProcess", "2021-02-19T15:24:44+08:00",
        {"bucket": None, "region": None, "object": "1.docx"},
        [out("test1/1.jpg", "markjrzhang-1251704708")], details=GENERIC,
    ),
    # --- moderation, Detail form (Java SDK)
    "ReviewImage-json-5.json": {
        "kind": "moderation",
        "event": "ReviewImage",
        "job_id": "ia70a9f88b131911eda2d7525400000000d",
        "state": "Success",
        "created_at": "2022-08-03T18:45:50+08:00",
        "result": 0,
        "label": "Normal",
        "score": 56,
        "input": {"bucket": "test-1251000000", "region": "ap-guangzhou", "object": "ftest.jpg"},
        "form": "detail",
        "is_test": False,
        "cos_headers": {"x-cos-meta-abc": "test"},
    },
    # --- workflows
    "WorkflowFinish-xml-1.xml": WF_DOC,
    "WorkflowFinish-json-1.json": WF_DOC,
    "WorkflowFinish-xml-2.xml": workflow(
        "ie4d9187d35dc11eb9cec525400860000", "w2b22307fb0e44107bc8ffe71e1d20000", "example",
        "2020-12-01T11:00:41+08:00", {"bucket": "examplebucket-1250000000", "object": "0000.mp4"},
        [
            task("Transcode", "je5195f3e35dc11ebbe6fed17a7c10000", "Transcode_1600413767353",
                 "t182c0ca7d91ca40969a3fc97c5559091a", "example",
                 "2020-12-01T11:00:42+08:00", "2020-12-01T11:00:45+08:00"),
            task("Transcode", "je55e922035dc11ebbe6fed17a7c10000", "Transcode_1600413767444",
                 "t182c0ca7d91ca40969a3fc97c5559091b", "example",
                 "2020-12-01T11:00:42+08:00", "2020-12-01T11:00:45+08:00"),
        ],
        {"x-cos-meta-id": "testid"},
        legacy=True,
    ),
    "WorkflowFinish-xml-3.xml": workflow(
        "i70ae991a152911ecb184525400a8700f", "w29ba54d02b7340dd9fb44eb5beb786b9", None,
        "2021-09-14T15:00:26+08:00", {"bucket": None, "object": "62ddbc1245.mp4"},
        [
            task("Transcode", "j70bab192152911ecab79bba409874f7f", "Transcode_1607323983818",
                 "t088613dea8d564a9ba7e6b02cbd5de877", "HLS-FHD",
                 "2021-09-14T15:00:27+08:00", "2021-09-14T15:00:42+08:00"),
        ],
        {"x-cos-meta-id": "62ddbc1245", "Content-Type": "video/mp4"},
    ),
}

ALWAYS = ("kind", "event", "state", "created_at")


def corpus_names():
    if not CALLBACKS.is_dir():
        return []
    return sorted(p.name for p in CALLBACKS.iterdir() if p.is_file() and p.suffix in (".xml", ".json"))


# ------------------------------------------------------------------ tests


def test_table_covers_every_corpus_file():
    names = set(corpus_names())
    assert names, f"no samples found under {CALLBACKS}"
    missing = sorted(names - set(EXPECTED))
    stale = sorted(set(EXPECTED) - names)
    assert not missing, f"corpus files without an expectation in test_corpus.EXPECTED: {missing}"
    assert not stale, f"expectations for files that are no longer in the corpus: {stale}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_sample(name):
    body = corpus_file(name)
    expected = EXPECTED[name]
    if expected == INVALID:
        with pytest.raises(InvalidCallback) as info:
            parse_callback(body)
        assert "\n" not in str(info.value)
        return

    data = parse_callback(body).to_dict()
    json.dumps(data)  # the public contract is JSON-able
    for key in ALWAYS:
        assert key in data, f"{name}: to_dict() lacks {key!r}"

    expected = dict(expected)
    tasks = expected.pop("tasks", None)
    details = expected.pop("details", None)
    for key, value in expected.items():
        assert data[key] == value, f"{name}: {key} is {data[key]!r}, expected {value!r}"

    if tasks is not None:
        assert len(data["tasks"]) == len(tasks), f"{name}: task count"
        for got, want in zip(data["tasks"], tasks):
            assert {k: got[k] for k in want} == want, f"{name}: task {want['job_id']}"
    if details is not None:
        assert data["details"]["type"] == details, f"{name}: details type"


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e != INVALID))
def test_corpus_sample_with_lying_content_type(name):
    """The Content-Type header is only a hint: the wrong one changes nothing."""
    body = corpus_file(name)
    liar = "application/xml" if name.endswith(".json") else "application/json"
    assert parse_callback(body, liar).to_dict() == parse_callback(body).to_dict()


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e != INVALID))
def test_corpus_sample_as_text(name):
    """A str body (already decoded) parses like the bytes."""
    body = corpus_file(name)
    assert parse_callback(body.decode("utf-8")).to_dict() == parse_callback(body).to_dict()


# ------------------------------------------------------------------ detail views of a few samples


@pytest.mark.parametrize("name", ["PicProcess-xml-1.xml", "PicProcess-xml-2.xml", "PicProcess-json-2.json"])
def test_picprocess_details(name):
    details = parse_callback(corpus_file(name)).to_dict()["details"]
    assert details["output"] == out("output/out.jpg", PIC_BKT)
    original, processed = details["original"], details["processed"]
    # <Etag>"d5a4…"</Etag>: the literal quotes are stripped
    assert original["etag"] == "d5a491cd3d8d071e3212c3478e8e35a1"
    assert (original["format"], original["width"], original["height"], original["quality"]) == ("JPEG", 500, 417, 68)
    assert original["orientation"] == 0 and original["ave"] == "0xc64847"
    # <Etag/> (XML) or no Etag (JSON) → None; numbers given as strings become ints
    assert processed["etag"] is None
    assert (processed["width"], processed["height"], processed["size"]) == (417, 500, 24911)


@pytest.mark.parametrize("name", ["SmartCover-xml-1.xml", "SmartCover-json-1.json"])
def test_smartcover_details(name):
    details = parse_callback(corpus_file(name)).to_dict()["details"]
    assert details["covers"] == COVER_OUT
    assert details["count"] == 5
    assert details["delete_duplicates"] is False
    assert (details["format"], details["width"], details["height"]) == ("jpg", 1280, 960)


@pytest.mark.parametrize("name", ["Segment-xml-1.xml", "VoiceSeparate-json-1.json", "SDRtoHDR-json-2.json"])
def test_media_md5(name):
    md5 = parse_callback(corpus_file(name)).to_dict()["details"]["md5"]
    expected = {
        "Segment-xml-1.xml": {
            "output/segment-0": "59a4edd95c6ddca43277d82cf33edc0d",
            "output/segment-8": "a84dd4f738ce81f4e3da55b393b2fae4",
        },
        "VoiceSeparate-json-1.json": {
            "output/audio.mp3": "3b883c0462ba845acdf3eb7e30db1a1c",
            "output/backgroud.mp3": "62de6bb513d6105eeeb1a6ab0077cb5a",
        },
        "SDRtoHDR-json-2.json": {"output/sdr2hdr.mp4": "ed8b5615687d789d6293bd58fa1ea1c0"},
    }[name]
    for key, value in expected.items():
        assert md5.get(key) == value
    if name == "Segment-xml-1.xml":
        assert len(md5) == 9


@pytest.mark.parametrize(
    "name", ["SuperResolution-xml-1.xml", "SuperResolution-xml-3.xml", "SuperResolution-json-1.json"]
)
def test_nested_failed_state_does_not_leak(name):
    """Operation.DigitalWatermark.State=Failed sits inside a job whose own State is Success."""
    callback = parse_callback(corpus_file(name))
    assert callback.state == "Success" and callback.succeeded


def test_legacy_and_current_transcode_agree_on_outputs():
    """The legacy doc sample with and without Md5Info lists the same output."""
    five = parse_callback(corpus_file("Transcode-xml-5.xml")).to_dict()
    six = parse_callback(corpus_file("Transcode-xml-6.xml")).to_dict()
    assert five["outputs"] == six["outputs"] == LEGACY_OUT
    assert six["details"]["md5"] == {LEGACY_OUT[0]["object"]: "39ad161a7807240f4d6f94767e8e2f89"}
    assert five["details"]["md5"] == {}

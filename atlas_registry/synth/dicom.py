"""Synthetic DICOM series written with pydicom from a synthetic T1, as a scanner would send them.

:func:`write_series` writes into ``SESSION_DIR``: the T1 as a 3-D MPRAGE series (classic MR Image
Storage, one file per slice; or one Enhanced MR Image Storage object with ``enhanced=True``), a
3-slice localizer and a 2-D FLAIR, every file carrying the identifying attributes a real header
carries (PatientName, PatientID, PatientBirthDate, AccessionNumber, InstitutionName, study and series
dates and times, physicians, station, serial number, UIDs). It returns those values so a test can
look for each in every output byte.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path

import numpy as np

NAMES = ("Doe^Jane", "Roe^Richard", "Smith^Alice", "Miller^Bob", "Garcia^Lena", "Novak^Petra", "Okafor^Chidi")
INSTITUTIONS = ("St Elsewhere General Hospital", "Mercy Neuroscience Center", "Riverside University Clinic")
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
MANUFACTURER_DICOM = {"GE": "GE MEDICAL SYSTEMS", "Siemens": "SIEMENS", "Philips": "Philips Medical Systems"}


def _lps(v) -> list[float]:
    return [-float(v[0]), -float(v[1]), float(v[2])]


def _ds(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") or "0"


def _identity(subject: str, session: str, seed: int, sid) -> dict:
    rng = np.random.default_rng([seed, sid.cohort, sid.subject, sid.timepoint, 7])
    born = date(1940, 1, 1) + timedelta(days=int(rng.integers(0, 15000)))
    studied = date(2012, 1, 1) + timedelta(days=int(rng.integers(0, 2000)) + 120 * (sid.timepoint - 1))
    return {
        "PatientName": NAMES[int(rng.integers(len(NAMES)))] + f"{int(rng.integers(10, 99))}",
        "PatientID": subject,
        "PatientBirthDate": born.strftime("%Y%m%d"),
        "PatientSex": "F" if rng.random() < 0.5 else "M",
        "AccessionNumber": f"ACC{int(rng.integers(10**7, 10**8))}",
        "InstitutionName": INSTITUTIONS[int(rng.integers(len(INSTITUTIONS)))],
        "InstitutionAddress": f"{int(rng.integers(10, 999))} Hospital Road, Springfield",
        "ReferringPhysicianName": "House^Gregory",
        "PerformingPhysicianName": "Quinn^Michaela",
        "OperatorsName": "Tech^Terry",
        "StationName": f"MRC{int(rng.integers(10000, 99999))}",
        "DeviceSerialNumber": f"SN{int(rng.integers(10**6, 10**7))}",
        "StudyDate": studied.strftime("%Y%m%d"),
        "StudyTime": f"{int(rng.integers(7, 18)):02d}{int(rng.integers(0, 60)):02d}{int(rng.integers(0, 60)):02d}",
        "StudyID": f"ST{int(rng.integers(10**5, 10**6))}",
        "StudyDescription": f"BRAIN STROKE {session.upper()}",
    }


def _base(ident: dict, scanner: dict, study_uid: str, frame_uid: str):
    from pydicom.dataset import Dataset

    ds = Dataset()
    for k, v in ident.items():
        setattr(ds, k, v)
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = ident["StudyDate"]
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = ident["StudyTime"]
    ds.Modality = "MR"
    ds.Manufacturer = MANUFACTURER_DICOM.get(scanner["Manufacturer"], scanner["Manufacturer"])
    ds.ManufacturerModelName = scanner["Model"]
    ds.MagneticFieldStrength = _ds(float(scanner["Field Strength (T)"]))
    ds.StudyInstanceUID = study_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PatientPosition = "HFS"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def _save(ds, path: Path, sop_class: str) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _geometry(affine: np.ndarray):
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    row_dir = affine[:3, 0] / zooms[0]  # along voxel axis i: DICOM columns
    col_dir = affine[:3, 1] / zooms[1]  # along voxel axis j: DICOM rows
    return zooms, [*_lps(row_dir), *_lps(col_dir)]


def _volume_series(
    out: Path,
    base_ds,
    data: np.ndarray,
    affine: np.ndarray,
    number: int,
    desc: str,
    image_type: list[str],
    acq: str,
    tr: float,
    te: float,
    enhanced: bool,
) -> list[str]:
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    zooms, iop = _geometry(affine)
    series_uid = generate_uid()
    values: list[str] = [series_uid]
    common = dict(
        SeriesInstanceUID=series_uid,
        SeriesNumber=number,
        SeriesDescription=desc,
        ProtocolName=desc,
        ImageType=image_type,
        MRAcquisitionType=acq,
        RepetitionTime=_ds(tr),
        EchoTime=_ds(te),
        ScanningSequence="GR\\IR" if "T1" in desc.upper() or "MPRAGE" in desc.upper() else "SE",
        SequenceVariant="SP\\MP",
        FlipAngle="9",
        SliceThickness=_ds(zooms[2]),
        Rows=int(data.shape[1]),
        Columns=int(data.shape[0]),
        PixelSpacing=[_ds(zooms[1]), _ds(zooms[0])],
    )
    if enhanced:
        ds = copy.deepcopy(base_ds)
        for key, v in common.items():
            if key not in ("RepetitionTime", "EchoTime", "PixelSpacing", "SliceThickness"):
                setattr(ds, key, v)
        ds.NumberOfFrames = int(data.shape[2])
        shared = Dataset()
        pm = Dataset()
        pm.PixelSpacing, pm.SliceThickness = common["PixelSpacing"], common["SliceThickness"]
        po = Dataset()
        po.ImageOrientationPatient = [_ds(x) for x in iop]
        timing = Dataset()
        timing.RepetitionTime, timing.FlipAngle = float(tr), 9.0
        echo = Dataset()
        echo.EffectiveEchoTime = float(te)
        shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [pm], [po]
        shared.MRTimingAndRelatedParametersSequence, shared.MREchoSequence = [timing], [echo]
        ds.SharedFunctionalGroupsSequence = [shared]
        frames = []
        for k in range(data.shape[2]):
            fg, pp, fc = Dataset(), Dataset(), Dataset()
            pp.ImagePositionPatient = [_ds(x) for x in _lps(affine @ [0, 0, k, 1])]
            fc.InStackPositionNumber, fc.StackID, fc.DimensionIndexValues = k + 1, "1", [1, k + 1]
            fg.PlanePositionSequence, fg.FrameContentSequence = [pp], [fc]
            frames.append(fg)
        ds.PerFrameFunctionalGroupsSequence = frames
        ds.InstanceNumber = 1
        ds.PixelData = np.ascontiguousarray(np.transpose(data, (2, 1, 0))).astype("<i2").tobytes()
        _save(ds, out / "IM0001.dcm", ENHANCED_MR_IMAGE)
        return values + [ds.SOPInstanceUID]
    for k in range(data.shape[2]):
        ds = copy.deepcopy(base_ds)
        for key, v in common.items():
            setattr(ds, key, v)
        ds.ImageOrientationPatient = [_ds(x) for x in iop]
        ds.ImagePositionPatient = [_ds(x) for x in _lps(affine @ [0, 0, k, 1])]
        ds.InstanceNumber = k + 1
        ds.PixelData = np.ascontiguousarray(data[:, :, k].T).astype("<i2").tobytes()
        _save(ds, out / f"IM{k + 1:04d}.dcm", MR_IMAGE)
        values.append(ds.SOPInstanceUID)
    return values


def write_series(
    session_dir,
    t1,
    scanner: dict,
    subject: str,
    session: str,
    seed: int,
    sid,
    enhanced: bool = False,
    extras: bool = True,
) -> set[str]:
    """The DICOM of one session; returns the identifying values written (for the leak tests)."""
    from pydicom.uid import generate_uid

    out = Path(session_dir)
    ident = _identity(subject, session, seed, sid)
    study_uid, frame_uid = generate_uid(), generate_uid()
    base = _base(ident, scanner, study_uid, frame_uid)
    data = np.asanyarray(t1.dataobj).astype(np.int16)
    written = set(ident.values()) | {study_uid, frame_uid, ident["PatientName"].replace("^", " ")}
    written |= set(
        _volume_series(
            out / "s003_mprage",
            base,
            data,
            t1.affine,
            3,
            "t1_mprage_sag_p2_iso",
            ["ORIGINAL", "PRIMARY", "M", "NORM"],
            "3D",
            2300.0,
            2.98,
            enhanced,
        )
    )
    if extras:
        small = data[::4, ::4, :: max(1, data.shape[2] // 3)][:, :, :3]
        aff = t1.affine.copy()
        aff[:3, :2] *= 4
        aff[:3, 2] *= max(1, data.shape[2] // 3)
        written |= set(
            _volume_series(
                out / "s001_localizer",
                base,
                small,
                aff,
                1,
                "localizer",
                ["ORIGINAL", "PRIMARY", "LOCALIZER"],
                "2D",
                8.6,
                4.0,
                False,
            )
        )
        flair = data[::2, ::2, ::4]
        aff2 = t1.affine.copy()
        aff2[:3, :2] *= 2
        aff2[:3, 2] *= 4
        written |= set(
            _volume_series(
                out / "s005_flair",
                base,
                flair,
                aff2,
                5,
                "t2_flair_tra",
                ["ORIGINAL", "PRIMARY", "M", "NORM"],
                "2D",
                9000.0,
                81.0,
                False,
            )
        )
    return {w for w in written if w}

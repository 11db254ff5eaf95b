"""DICOM JSON to the Native DICOM Model XML (PS3.19 Annex A), for clients asking for
``application/dicom+xml`` (PS3.18 §F.3). Written from the JSON the server already makes, so JSON
and XML answers always say the same thing."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from pydicom.datadict import keyword_for_tag

NAMESPACE = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
_NAME_PARTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def _person_name(parent: ElementTree.Element, number: int, value: dict[str, str]) -> None:
    name = ElementTree.SubElement(parent, "PersonName", number=str(number))
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        text = value.get(group)
        if not text:
            continue
        group_element = ElementTree.SubElement(name, group)
        for part, piece in zip(_NAME_PARTS, text.split("^"), strict=False):
            if piece:
                ElementTree.SubElement(group_element, part).text = piece


def _attributes(parent: ElementTree.Element, dataset: dict[str, Any]) -> None:
    for tag in sorted(dataset):
        attribute = dataset[tag]
        vr = attribute.get("vr", "UN")
        element = ElementTree.SubElement(parent, "DicomAttribute", {"tag": tag, "vr": vr})
        keyword = keyword_for_tag(int(tag, 16))
        if keyword:
            element.set("keyword", keyword)
        if "BulkDataURI" in attribute:
            ElementTree.SubElement(element, "BulkData", uri=attribute["BulkDataURI"])
            continue
        if "InlineBinary" in attribute:
            ElementTree.SubElement(element, "InlineBinary").text = attribute["InlineBinary"]
            continue
        for number, value in enumerate(attribute.get("Value", []), start=1):
            if vr == "SQ":
                item = ElementTree.SubElement(element, "Item", number=str(number))
                _attributes(item, value or {})
            elif vr == "PN" and isinstance(value, dict):
                _person_name(element, number, value)
            else:
                ElementTree.SubElement(element, "Value", number=str(number)).text = (
                    "" if value is None else str(value)
                )


def dicom_xml(dataset: dict[str, Any]) -> bytes:
    """One dataset (DICOM JSON object) as a NativeDicomModel document."""
    root = ElementTree.Element("NativeDicomModel", xmlns=NAMESPACE)
    _attributes(root, dataset)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document

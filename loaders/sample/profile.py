"""Facts about the real exports that the sample generator reproduces.

Every figure here was read off the real files (docs/raw-formats.md, sections 1 to 4,
with their figures). Counts are for the full-scale client master (1,267 rows); the
generator scales them down for the small sample and keeps every value present at least once.
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_FILE = "2025-05 commercial client list.xlsx"
HISTORY_FILE = "2025-05 commercial deliver history.xlsx"
APP_FILE = "luckygas.db"
LOCK_FILE = "~$" + CLIENT_FILE
MASTER_SHEET = "客戶資料"
FULL_CLIENTS = 1267
SCALES = {
    # clients, share of the real row volumes
    "full": (FULL_CLIENTS, 1.0),
    "small": (127, 0.01),
}

# The 76 headers of 客戶資料, in order. Column 70 has an empty header cell.
CLIENT_HEADERS: list[str] = [
    "客戶", "電子發票抬頭", "客戶簡稱", "地址", "系統上鋼瓶數量",
    "50KG", "營20", "營16", "20KG", "16KG", "10KG", "4KG", "好運16", "瓶安桶10", "幸福丸", "好運20",
    "流量50公斤", "流量20公斤", "流量16公斤", "流量好運20公斤", "流量好運16公斤",
    "計價方式", "結帳方式", "結帳用檔案", "訂閱式會員", "發報", "排巡", "設備客戶買斷", "已解約",
    "需要當天配送",
    "8~9", "9~10", "10~11", "11~12", "12~13", "13~14", "14~15", "15~16", "16~17", "17~18",
    "18~19", "19~20",
    "時段早1午2晚3全天0", "公休日", "狀態", "切替器型號", "月配送量", "退氣", "實際購買公斤數",
    "退氣比例", "平均日使用", "串接數量", "備用量", "最大週期", "可延後天數", "是否需要當天去",
    "區域", "1汽車/2機車/0全部", "單一區域供應",
    "第一使用區域(串接)", "第二使用區域", "第三使用區域", "第四使用區域", "第五使用區域",
    "預備桶", "串接場所申報", "流量表", "帶線流量錶", "切替器", "", "接點式壓力錶", "壓差開關",
    "微動開關", "永勝", "智慧秤", "類型",
]  # fmt: skip
assert len(CLIENT_HEADERS) == 76

HOUR_COLUMNS = [f"{h}~{h + 1}" for h in range(8, 20)]


@dataclass(frozen=True)
class Product:
    code: str
    kind: str  # "cylinder" or "metered"
    kg: int
    brand: str
    client_column: str
    history_column: str


# The 16 products, in the column order of both workbooks.
PRODUCTS: list[Product] = [
    Product("GAS-C50-R", "cylinder", 50, "regular", "50KG", "50公斤"),
    Product("GAS-C20-CM", "cylinder", 20, "commercial", "營20", "丙烷20"),
    Product("GAS-C16-CM", "cylinder", 16, "commercial", "營16", "丙烷16"),
    Product("GAS-C20-R", "cylinder", 20, "regular", "20KG", "20公斤"),
    Product("GAS-C16-R", "cylinder", 16, "regular", "16KG", "16公斤"),
    Product("GAS-C10-R", "cylinder", 10, "regular", "10KG", "10公斤"),
    Product("GAS-C04-R", "cylinder", 4, "regular", "4KG", "4公斤"),
    Product("GAS-C16-H", "cylinder", 16, "haoyun", "好運16", "好運桶16"),
    Product("GAS-C10-P", "cylinder", 10, "safety", "瓶安桶10", "瓶安桶10"),
    Product("GAS-C00-X", "cylinder", 4, "xingfu", "幸福丸", "幸福丸4"),
    Product("GAS-C20-H", "cylinder", 20, "haoyun", "好運20", "好運桶20"),
    Product("GAS-F50-R", "metered", 50, "regular", "流量50公斤", "流量50公斤"),
    Product("GAS-F20-R", "metered", 20, "regular", "流量20公斤", "流量20公斤"),
    Product("GAS-F16-R", "metered", 16, "regular", "流量16公斤", "流量16公斤"),
    Product("GAS-F20-H", "metered", 20, "haoyun", "流量好運20公斤", "流量好運20公斤"),
    Product("GAS-F16-H", "metered", 16, "haoyun", "流量好運16公斤", "流量好運16公斤"),
]
PRODUCT_BY_CODE = {p.code: p for p in PRODUCTS}
# The app records cylinders by size only (delivered_50kg ... delivered_4kg).
APP_SIZES = (50, 20, 16, 10, 4)
APP_REGULAR_PRODUCT = {
    50: "GAS-C50-R",
    20: "GAS-C20-R",
    16: "GAS-C16-R",
    10: "GAS-C10-R",
    4: "GAS-C04-R",
}

# Values with their counts in the real master (column -> {value: count}); None = blank cell.
# Numbers are numeric cells (floats in the file), strings are text cells.
CYLINDER_COUNTS: dict[str, dict[float, int]] = {
    "50KG": {1.0: 23, 2.0: 19, 3.0: 11, 4.0: 5, 5.0: 2, 10.0: 1, 8.0: 1},
    "營20": {2.0: 4, 3.0: 2, 1.0: 1},
    "營16": {},
    "20KG": {2.0: 355, 1.0: 157, 3.0: 38, 4.0: 24, 5.0: 8, 6.0: 3, 9.0: 1, 10.0: 1},
    "16KG": {1.0: 56, 2.0: 11, 3.0: 2},
    "10KG": {1.0: 5},
    "4KG": {1.0: 37, 2.0: 11, 3.0: 8},
    "好運16": {1.0: 35, 2.0: 15, 3.0: 2, 4.0: 1, 10.0: 1},
    "瓶安桶10": {1.0: 2},
    "幸福丸": {3.0: 5, 5.0: 5, 4.0: 1},
    "好運20": {},
}
METERED_COUNTS: dict[str, dict[float, int]] = {
    "流量50公斤": {
        2.0: 111, 3.0: 72, 1.0: 26, 4.0: 11, 5.0: 9, 10.0: 8, 6.0: 4, 7.0: 1, 15.0: 1, 20.0: 1,
        8.0: 1,
    },
    "流量20公斤": {1.0: 142, 2.0: 41, 3.0: 39, 5.0: 2, 4.0: 2, 6.0: 1},
    "流量16公斤": {},
    "流量好運20公斤": {},
    "流量好運16公斤": {1.0: 143, 2.0: 1},
}  # fmt: skip

PRICING = {"桶裝": 783, "流量": 483, "桶裝現金": 1}
PAYMENT = {"現金": 651, "月結": 607, "收現": 8, None: 1}
TIME_OF_DAY = {0.0: 422, 1.0: 378, 2.0: 287, 3.0: 37, None: 143}
VEHICLE = {1.0: 1052, 2.0: 195, 0.0: 16, None: 4}
SINGLE_AREA = {1.0: 661, 2.0: 176, 3.0: 130, 4.0: 38, 5.0: 3, None: 259}

# Hour-window columns: 1 or blank; count of 1s per column.
HOUR_COUNTS = dict(
    zip(HOUR_COLUMNS, [677, 750, 834, 837, 800, 807, 788, 796, 832, 797, 696, 661], strict=True)
)

# Flag columns: V (yes), blank (no), and the stray words the real file holds.
FLAG_COUNTS: dict[str, dict[str, int]] = {
    "結帳用檔案": {"V": 10},
    "訂閱式會員": {"V": 319, "先不裝": 1},
    "發報": {"V": 794},
    "排巡": {"V": 1131, "X": 45, "餐車": 9, "夜市": 6},
    "設備客戶買斷": {"設備學校的": 1, "設備飯店的": 1, "無法安裝": 1},
    "已解約": {"V": 10},
    "需要當天配送": {"V": 9, "現金": 1, "月結": 1},
    "串接場所申報": {"4KG周期巡": 1},
}
# Flag values that are not a stray word: V is yes, X an explicit no.
FLAG_WORDS = {"V": True, "X": False}

# Equipment columns: 1 or blank, and 客戶自有 (customer-owned) as a stray word in two.
EQUIPMENT_COUNTS: dict[str, dict[float | str, int]] = {
    "流量表": {1.0: 262, "客戶自有": 2},
    "帶線流量錶": {1.0: 219},
    "切替器": {1.0: 340, "客戶自有": 2},
    "": {1.0: 132},
    "接點式壓力錶": {1.0: 269},
    "壓差開關": {1.0: 35},
    "微動開關": {1.0: 3},
    "永勝": {1.0: 5},
    "智慧秤": {1.0: 298},
}

# 公休日 (closed day): weekdays 1-7, decimals naming two weekdays, Red (national holidays), words.
CLOSED_DAY_COUNTS: dict[float | str, int] = {
    7.0: 91, 6.7: 42, 1.0: 41, "Red": 25, 3.0: 25, 2.0: 20, 6.0: 16, 4.0: 12, 1.2: 9, 2.3: 6,
    5.0: 6, 7.1: 4, 3.4: 2, 4.5: 2, 5.6: 1, 1.7: 1, 2.5: 1, 1.3: 1,
    "不一定": 2, "初一十五": 3, "看情況": 1, "無": 2, "過年": 1, "颱風天": 1, "初一": 1,
}  # fmt: skip
CLOSED_DAY_BLANK = 951

AREAS: dict[str, int] = {
    "A-瑞光": 355, "B-四維": 281, "C-漢中": 225, "D-東方大鎮": 160, "E-力國": 78,
    "F-成功線": 24, "F-成功縣": 1, "G-都蘭線": 26, "H-鹿野線": 23, "H-鹿野縣": 2,
    "I-池上線": 3, "J-知本線": 9, "K-東大線": 9, "L-大武線": 24, "M-商校商圈": 21, "Y-富岡": 25,
}  # fmt: skip
AREA_BLANK = 1
# The township an area's addresses lie in (addresses are written 臺東縣<township><road>).
AREA_TOWNSHIP = {
    "A": "臺東市", "B": "臺東市", "C": "臺東市", "D": "臺東市", "E": "臺東市", "Y": "臺東市",
    "J": "臺東市", "K": "臺東市", "M": "臺東市", "G": "東河鄉", "L": "大武鄉", "F": "成功鎮",
    "H": "鹿野鄉", "I": "池上鄉",
}  # fmt: skip
ROADS = [
    "中華路一段", "中華路二段", "中山路", "更生路", "四維路一段", "四維路二段", "四維路三段",
    "漢中街", "新生路", "博愛路", "正氣路", "開封街", "鐵花路", "傳廣路", "中興路二段",
    "中興路三段", "興安路一段", "豐榮路", "光明路", "大同路", "寶桑路", "南京路", "復興路",
    "馬亨亨大道", "源遠街", "知本路三段", "溫泉路", "中正路", "成功路", "光復路",
]  # fmt: skip
# Places written instead of an address in the real file (no 號).
PLACES = ["中央市場", "豐里市場", "知本溫泉區", "鐵花村", "臺東夜市", "卑南遺址公園旁"]

CUSTOMER_TYPES = {"夜市": 37, "學校": 36, "市場": 12, "餐車": 7, "辦桌": 3}

SWITCH_MODELS_TOP = {
    "重量發報": 251, "壓力錶(大錶)發報": 136, "自動切替器KA32AK": 86, "流量錶發報": 24,
    "接點式壓力發報": 24, "自動切替器KA30K": 22, "發報切替器TAX-30A": 19, "壓差開關KA35": 19,
    "接點式發報": 17, "接點式壓力大錶": 13,
}  # fmt: skip
SWITCH_MODELS_FILLED = 691

CYLINDER_CONFIG_TOP = {
    "50*4": 27, "50*6": 14, "20*2": 9, "20*3+16*1": 9, "50*5": 8, "20*3": 7, "20*6": 7,
    "20*7": 6, "20*5": 6, "20*8": 6,
}  # fmt: skip
CYLINDER_CONFIG_FILLED = 184

USAGE_AREA_TOP = {
    "第一使用區域(串接)": (
        867,
        {"重量發報雙瓶20*2": 119, "20KG+16KG:2+2": 113, "50KG:2+2": 90, "重量發報20*1": 52,
         "50KG:3+3": 46, "20KG:2+1": 46, "50KG:1+1": 28, "20KG:3": 27, "50KG:3+2": 24,
         "20KG:1+1": 20},
    ),
    "第二使用區域": (
        393,
        {"雙瓶20*2": 104, "20*1": 33, "快速爐20*1": 31, "瓦斯爐20*1": 13, "油炸20*1": 12,
         "熱水器20*1": 7, "煎台16*1": 6, "煎台20*1": 5, "飯鍋20*1": 5, "烤箱20*1": 4},
    ),
    "第三使用區域": (
        193,
        {"快速爐20*1": 38, "20*1": 18, "瓦斯爐20*1": 15, "雙瓶20*2": 13, "飯鍋20*1": 7,
         "低壓20*1": 6, "間台20*1": 4, "油炸20*1": 4, "快速20*1": 3, "16*1": 3},
    ),
    "第四使用區域": (
        40,
        {"快速爐20*1": 6, "20*1": 5, "飯鍋20*1": 4, "瓦斯爐20*1": 3, "4*1": 3, "快速20*1": 2,
         "大單爐": 2, "廚房20*1": 1, "煎台16*1": 1, "電子高湯盧": 1},
    ),
    "第五使用區域": (
        5,
        {"4*1": 1, "熱水器20*1": 1, "快速爐20*1": 1, "5Q電子快速爐": 1, "瓦斯爐16*1": 1},
    ),
}  # fmt: skip
APPLIANCES = ["快速爐", "瓦斯爐", "油炸", "熱水器", "煎台", "飯鍋", "烤箱", "低壓", "湯爐", "蒸籠"]

SPARE_TOP: dict[float | str, int] = {
    "20*1": 106, "20*2": 57, 1.0: 33, "20*3": 10, "20*1+16*1": 9, "20*4": 9, "20*1+4*1": 8,
    "16*1": 7, "4*1": 6, "20*5": 5,
}  # fmt: skip
SPARE_FILLED = 294

# Planning metrics: (filled count, top values with counts, generator of the long tail).
METRIC_FILLED = {
    "月配送量": 1073, "退氣": 1015, "實際購買公斤數": 1078, "退氣比例": 1053, "平均日使用": 1123,
    "串接數量": 802, "備用量": 813, "最大週期": 792, "可延後天數": 791, "是否需要當天去": 1130,
}  # fmt: skip
METRIC_TOP: dict[str, dict[float, int]] = {
    "月配送量": {20.0: 75, 80.0: 69, 100.0: 61, 40.0: 53, 120.0: 50, 200.0: 44, 160.0: 43,
                 60.0: 42, 300.0: 27, 180.0: 22},
    "退氣": {0.0: 315, 1.0: 36, 2.0: 25, 7.0: 25, 4.0: 25, 5.0: 22, 3.0: 21, 6.0: 21, 9.0: 21,
             12.0: 17},
    "實際購買公斤數": {20.0: 50, 80.0: 29, 100.0: 28, 40.0: 23, 200.0: 18, 60.0: 18, 400.0: 15,
                       120.0: 12, 16.0: 11, 300.0: 10},
    "退氣比例": {0.0: 371, 0.05: 40, 0.08: 32, 0.07: 29, 0.06: 28, 0.13: 28, 0.15: 27, 0.12: 26,
                 0.01: 24, 0.1: 24},
    "平均日使用": {0.0: 52, 0.7: 51, 3.3: 34, 1.3: 33, 2.7: 30, 2.0: 28, 2.4: 20, 4.0: 20, 6.7: 18,
                   0.5: 18},
    "串接數量": {40.0: 187, 72.0: 131, 60.0: 110, 200.0: 99, 300.0: 43, 100.0: 35, 20.0: 25,
                 250.0: 25, 80.0: 22, 150.0: 19},
    "備用量": {40.0: 143, 36.0: 135, 100.0: 133, 20.0: 129, 50.0: 69, 60.0: 63, 150.0: 36,
               80.0: 17, 32.0: 12, 200.0: 8},
    "最大週期": {10.0: 52, 6.0: 51, 8.0: 51, 13.0: 45, 9.0: 44, 5.0: 42, 4.0: 41, 7.0: 37,
                 12.0: 35, 11.0: 35},
    "可延後天數": {3.0: 77, 2.0: 77, 1.0: 77, 5.0: 72, 4.0: 70, 12.0: 47, 8.0: 44, 7.0: 44,
                   9.0: 34, 6.0: 34},
    "是否需要當天去": {0.0: 89, -1.0: 80, -3.0: 55, 17.0: 38, -2.0: 37, 15.0: 36, 19.0: 35,
                       16.0: 33, 9.0: 31, 7.0: 29},
}  # fmt: skip

# Distinct values per column in the real master (the long tail beyond the top values).
METRIC_DISTINCT = {
    "月配送量": 199, "退氣": 172, "實際購買公斤數": 428, "退氣比例": 76, "平均日使用": 245,
    "串接數量": 37, "備用量": 33, "最大週期": 70, "可延後天數": 60, "是否需要當天去": 157,
}  # fmt: skip
USAGE_AREA_DISTINCT = {
    "第一使用區域(串接)": 120, "第二使用區域": 145, "第三使用區域": 84, "第四使用區域": 22,
    "第五使用區域": 5,
}  # fmt: skip

# Outliers present in the real file that a business rule should catch: (column, value, rule).
METRIC_OUTLIERS: list[tuple[str, float, str]] = [
    ("月配送量", 1804832.0, "monthly_volume_implausible"),
    ("實際購買公斤數", -2.0, "purchase_kg_negative"),
    ("平均日使用", -0.1, "daily_usage_negative"),
    ("退氣比例", 4.59, "return_ratio_above_one"),
    ("可延後天數", -2.0, "delay_days_negative"),
]

CODE_PREFIX_COUNTS = {14: 6, 15: 3, 16: 118, 17: 369, 18: 640, 19: 131}
CODE_MIN, CODE_MAX = 1400103, 1967935

SALESPEOPLE = ["林志明", "陳美玲", "王建國", "張淑芬", "李文雄", "黃俊傑"]
DRIVERS = ["吳家豪", "劉志偉", "蔡明德", "楊宗翰", "許文彬", "鄭國華", "謝承恩", "洪子軒"]
PLATES = ["BGH-0123", "BGH-0456", "ALM-7788", "ALM-7789", "MDK-3021", "NQP-5510"]

SHORT_NAME_HEADS = [
    "阿美", "老王", "小林", "東海", "鐵花", "海濱", "卑南", "知本", "都蘭", "成功", "富岡", "豐里",
    "鹿野", "池上", "關山", "太麻里", "大武", "寶桑", "馬蘭", "新生", "正氣", "中華", "四維", "漢中",
    "光明", "長濱", "金峰", "延平", "溫泉", "月光", "山海", "好客", "阿嬤", "阿伯", "大鍋", "黑糖",
]  # fmt: skip
SHORT_NAME_TAILS = [
    "小吃", "麵店", "早餐店", "便當", "火鍋", "餐廳", "熱炒", "燒臘", "肉圓", "米苔目", "臭豆腐",
    "豆花", "鍋貼", "牛肉麵", "自助餐", "海產", "民宿", "飯店", "咖啡", "烘焙坊", "冰店", "滷味",
    "羊肉爐", "鵝肉", "快餐", "雞肉飯", "蔥油餅", "攤", "國小", "國中", "市場攤",
]  # fmt: skip
INVOICE_SUFFIXES = [
    "",
    "",
    "",
    "店",
    "小吃店",
    "餐飲店",
    "有限公司",
    "企業社",
    "商行",
    "實業有限公司",
]
